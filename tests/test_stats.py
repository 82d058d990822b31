"""The book's one interval over seeds and one bootstrap: their coverage on simulated data with a known answer."""
import numpy as np
import pandas as pd
import pytest
import torch

from mdsgap import stats


def coverage(draw, estimate, truth, n_sims: int) -> float:
    hits = 0
    for i in range(n_sims):
        _, lo, hi = estimate(draw(np.random.default_rng(i)))
        hits += lo <= truth <= hi
    return hits / n_sims


@pytest.mark.parametrize("n_seeds", [3, 5])
def test_seed_interval_covers_95_percent_with_seed_and_unit_spread(n_seeds):
    """Seeds differ (sd 0.1) and each holds 40 noisy units (sd 1): the interval of the seeds' mean covers the
    true 0.5 in 95% of 4,000 simulated experiments (binomial sd 0.0034)."""
    def draw(rng):
        return [rng.normal(0.5 + rng.normal(0, 0.1), 1.0, 40) for _ in range(n_seeds)]

    assert coverage(draw, stats.seed_interval, 0.5, 4000) == pytest.approx(0.95, abs=0.012)


def test_the_old_bootstrap_over_three_seeds_would_not_cover():
    """The check can fail: a percentile bootstrap of three seeds' means (what the book used before) covers
    far less than 95% on the same simulated experiments."""
    def boot(groups, n_boot=200):
        means = np.array([g.mean() for g in groups])
        rng = np.random.default_rng(0)
        reps = [means[rng.integers(0, 3, 3)].mean() for _ in range(n_boot)]
        return (means.mean(), *np.quantile(reps, [0.025, 0.975]))

    def draw(rng):
        return [rng.normal(0.5 + rng.normal(0, 0.1), 1.0, 40) for _ in range(3)]

    assert coverage(draw, boot, 0.5, 1000) < 0.85


def test_one_seed_uses_its_units_and_proportions_cover():
    """One model's accuracy on 300 images (Bernoulli 0.8): the t-interval over images covers 95%."""
    cov = coverage(lambda rng: [(rng.random(300) < 0.8).astype(float)], stats.seed_interval, 0.8, 4000)
    assert cov == pytest.approx(0.95, abs=0.015)


def test_interval_edge_cases():
    assert stats.interval([0.3, 0.3, 0.3]) == (0.3, 0.3, 0.3)
    v, lo, hi = stats.interval([0.7])
    assert v == 0.7 and np.isnan(lo) and np.isnan(hi)
    assert all(np.isnan(stats.interval([np.nan, np.nan])))
    assert all(np.isnan(stats.seed_interval([np.array([np.nan]), np.array([])])))
    v, lo, hi = stats.interval([1.0, 2.0, 3.0])   # mean 2, s = 1, t_{2, 0.975} = 4.303
    assert v == 2.0 and hi - v == pytest.approx(4.303 / np.sqrt(3), abs=1e-3) and v - lo == pytest.approx(hi - v)


def test_bootstrap_covers_a_metric_on_pairs_and_keeps_pairs_together():
    """The mean of 100 normal values: the percentile bootstrap covers about 95% (it runs slightly short at
    this size); paired tensors are resampled by the same rows."""
    cov = coverage(lambda rng: rng.normal(0.0, 1.0, 100),
                   lambda a: stats.bootstrap(np.mean, a, n_boot=200), 0.0, 600)
    assert 0.91 <= cov <= 0.98
    x = torch.arange(50.0)
    est, lo, hi = stats.bootstrap(lambda a, b: float((a - b).abs().max()), x, x.clone(), n_boot=50)
    assert est == lo == hi == 0.0   # rows stay paired: a - b is always zero
    with pytest.raises(ValueError, match="one row per unit"):
        stats.bootstrap(np.mean, np.zeros(3), np.zeros(4))


def test_intervals_in_the_one_layout_with_position_paired_and_formatted():
    rows = [{"seed": s, "factor": "shape", "image": 0.1 + 0.01 * s, "text": 0.8} for s in range(3)]
    t = stats.intervals(pd.DataFrame(rows), ["factor"], ["image", "text"])
    assert list(t.columns) == ["factor", "quantity", *stats.COLUMNS, "seeds"] and (t.seeds == 3).all()
    image, text = t.set_index("quantity").loc["image"], t.set_index("quantity").loc["text"]
    half = 4.303 * 0.01 / np.sqrt(3)   # the t-interval over the three seeds
    assert image.value == pytest.approx(0.11) and image.low == pytest.approx(0.11 - half, abs=1e-4)
    assert stats.position(text, image) == "above" and stats.position(image, text) == "below"
    assert stats.position(image, image) == "within"
    shown = stats.formatted(t, "factor", digits=2)
    assert list(shown.columns) == ["image", "text"] and shown.loc["shape", "text"] == "0.80 [0.80, 0.80]"


def test_paired_takes_the_difference_within_each_seed():
    # a and b overlap as ranges over seeds, but a is above b in every seed
    t = pd.DataFrame({"seed": [0, 1, 2], "g": ["x"] * 3, "a": [0.3, 0.5, 0.7], "b": [0.2, 0.4, 0.6]})
    got = stats.paired(t, ["g"], "a", "b").iloc[0]
    assert got.value == pytest.approx(0.1) and got.relation == "above"
    t["b"] = [0.4, 0.4, 0.6]
    assert stats.paired(t, ["g"], "a", "b").iloc[0].relation == "within"
    assert stats.sign(-0.2, -0.1) == "below"




def results():
    """Two settings of a knob, three seed models and one reference model (missing at knob 1)."""
    rows = [{"model": f"seed {s}", "knob": k, "other": "a", "value": 10 * k + s} for k in (0, 1) for s in range(3)]
    rows.append({"model": "main", "knob": 0, "other": "a", "value": -5.0})
    return pd.DataFrame(rows)


def test_seed_summary_averages_the_seed_models_and_keeps_the_reference_apart():
    t = stats.seed_summary(results(), ["knob"], "value", ["seed 0", "seed 1", "seed 2"], "main")
    assert list(t.knob) == [0, 1]
    assert t["value"].tolist() == pytest.approx([1.0, 11.0])  # the reference's -5 is left out of the mean
    assert (t["low"] <= t["value"]).all() and (t["value"] <= t["high"]).all()
    half = 4.303 / np.sqrt(3)   # seeds 0, 1, 2: s = 1, t-interval over the three seeds
    assert t["low"].iloc[0] == pytest.approx(1 - half, abs=1e-3) and t["high"].iloc[0] == pytest.approx(1 + half, abs=1e-3)
    assert t["main"].iloc[0] == -5.0 and np.isnan(t["main"].iloc[1])


def test_seed_summary_groups_by_several_columns_and_only_the_named_seeds():
    t = stats.seed_summary(results(), ["knob", "other"], "value", ["seed 2"], "main")
    assert list(zip(t.knob, t.other)) == [(0, "a"), (1, "a")]
    assert t["value"].tolist() == pytest.approx([2.0, 12.0])
