import numpy as np
import pandas as pd
import pytest

from mdsgap import report


def results():
    """Two settings of a knob, three seed models and one reference model (missing at knob 1)."""
    rows = [{"model": f"seed {s}", "knob": k, "other": "a", "value": 10 * k + s} for k in (0, 1) for s in range(3)]
    rows.append({"model": "main", "knob": 0, "other": "a", "value": -5.0})
    return pd.DataFrame(rows)


def test_seed_summary_averages_the_seed_models_and_keeps_the_reference_apart():
    t = report.seed_summary(results(), ["knob"], "value", ["seed 0", "seed 1", "seed 2"], "main")
    assert list(t.knob) == [0, 1]
    assert t["mean"].tolist() == pytest.approx([1.0, 11.0])  # the reference's -5 is left out of the mean
    assert (t["low"] <= t["mean"]).all() and (t["mean"] <= t["high"]).all()
    half = 4.303 / np.sqrt(3)   # seeds 0, 1, 2: s = 1, t-interval over the three seeds
    assert t["low"].iloc[0] == pytest.approx(1 - half, abs=1e-3) and t["high"].iloc[0] == pytest.approx(1 + half, abs=1e-3)
    assert t["main"].iloc[0] == -5.0 and np.isnan(t["main"].iloc[1])


def test_seed_summary_groups_by_several_columns_and_only_the_named_seeds():
    t = report.seed_summary(results(), ["knob", "other"], "value", ["seed 2"], "main")
    assert list(zip(t.knob, t.other)) == [(0, "a"), (1, "a")]
    assert t["mean"].tolist() == pytest.approx([2.0, 12.0])


def test_interval_table_writes_mean_and_interval():
    s = pd.DataFrame({"factor": ["shape"], "acc": [0.5], "acc low": [0.25], "acc high": [0.75]})
    t = report.interval_table(s, "factor", ["acc"], digits=2)
    assert t.loc["shape", "acc"] == "0.50 [0.25, 0.75]"


def _summary(rows):
    return report.seed_intervals(pd.DataFrame(rows), ["factor", "intervention"],
                                 ["image", "text", "other", "accuracy"])


def test_seed_intervals_and_relation():
    rows = [{"seed": s, "factor": "shape", "intervention": "none", "image": 0.1 + 0.01 * s,
             "text": 0.8, "other": 0.1, "accuracy": 0.7} for s in range(3)]
    row = _summary(rows).iloc[0]
    assert row["image"] == pytest.approx(0.11)
    half = 4.303 * 0.01 / np.sqrt(3)   # the t-interval over the three seeds
    assert row["image low"] == pytest.approx(0.11 - half, abs=1e-4) and row["image high"] == pytest.approx(0.11 + half, abs=1e-4)
    assert report.relation(row, row, "text", "image") == "above"
    assert report.relation(row, row, "image", "text") == "below"
    assert report.relation(row, row, "image") == "within"


def test_paired_takes_the_difference_within_each_seed():
    # a and b overlap as ranges over seeds, but a is above b in every seed
    t = pd.DataFrame({"seed": [0, 1, 2], "g": ["x"] * 3, "a": [0.3, 0.5, 0.7], "b": [0.2, 0.4, 0.6]})
    got = report.paired(t, ["g"], "a", "b").iloc[0]
    assert got.difference == pytest.approx(0.1) and got.relation == "above"
    t["b"] = [0.4, 0.4, 0.6]
    assert report.paired(t, ["g"], "a", "b").iloc[0].relation == "within"
