"""The one control: matched random sets outside the class, per-seed permutation p-values, one verdict."""
import numpy as np
import pandas as pd
import pytest
import torch

from mdsgap.edit import control


def world_of_latents(rng, n=600):
    """Latents whose image energy varies over two decades; the class 'ImgD' holds the heaviest third."""
    energy = np.exp(rng.normal(0, 1.2, n))
    carry = pd.DataFrame({"image energy": energy, "caption energy": np.exp(rng.normal(0, 1.2, n)),
                          "image firing": rng.uniform(0.05, 0.5, n), "caption firing": rng.uniform(0.05, 0.5, n)})
    labels = np.array(["CMD"] * n, dtype=object)
    labels[np.argsort(energy)[-n // 3:][rng.permutation(n // 3)[:30]]] = "ImgD"   # 30 of the 200 heaviest
    labels[rng.permutation(np.flatnonzero(labels == "CMD"))[:40]] = "TxtD"
    return carry, labels


def test_matched_sets_come_from_outside_the_class_within_tolerance_without_repeats():
    rng = np.random.default_rng(0)
    carry, labels = world_of_latents(rng)
    members, pool = np.flatnonzero(labels == "TxtD"), np.flatnonzero(labels != "TxtD")
    cfg = control.ControlConfig(n_random=20, match=control.IMAGE_SIDE)
    sets, match = control.matched_sets(members, pool, carry, cfg, rng)
    assert len(sets) == 20 and match["matched"] > 0.5   # two quantities at once, within a factor 1.5
    assert all(0.8 < match[f"{q} ratio"] < 1.25 for q in control.IMAGE_SIDE)
    for s in sets:
        assert len(set(s)) == len(s) == len(members) and not set(s) & set(members)
        ratio = carry["image energy"].to_numpy()[s].sum() / carry["image energy"].to_numpy()[members].sum()
        assert 0.7 < ratio < 1.4   # each set carries about the class's energy


@pytest.mark.slow
def test_a_mass_effect_is_not_a_class_effect_and_a_class_effect_is_found():
    """A readout that only counts removed energy (plus each latent's own effect): the matched control says
    'within' in about 95% of simulated studies (calibrated), while the size-only control that the book used
    before says 'above'. A readout with a real extra effect of the class is found. The pool outside the class
    is large (570 latents), as the control needs: a pool barely larger than the class gives random sets
    that share their latents, and an interval too narrow."""
    verdicts, naive, found = [], [], []
    for sim in range(40):
        rng = np.random.default_rng(sim)
        per_seed, size_only, extra = [], [], []
        for seed in range(3):
            carry, labels = world_of_latents(rng)
            e = carry["image energy"].to_numpy()
            noise = rng.normal(0, 2.0, len(e))
            mass = lambda s: {"drop": float(e[s].sum() + noise[s].sum())}
            special = lambda s: {"drop": float(e[s].sum() + noise[s].sum() + 3.0 * (labels[s] == "ImgD").sum())}
            cfg = control.ControlConfig(n_random=60, match=("image energy",), seed=seed)
            per_seed.append(control.compare(mass, labels, carry, cfg, classes=("ImgD",)).assign(seed=seed))
            extra.append(control.compare(special, labels, carry, cfg, classes=("ImgD",)).assign(seed=seed))
            # The control the book used before: sets of the class's size from every latent, class included.
            r = np.array([mass(rng.choice(len(e), 30, replace=False))["drop"] for _ in range(60)])
            c = mass(np.flatnonzero(labels == "ImgD"))["drop"]
            size_only.append({"class": "ImgD", "readout": "drop", "size": 30, "change": c, "random mean": r.mean(),
                              "p above": control.mid_rank_p(c, r), "n random": 60, "matched": 0.0, "seed": seed})
        verdicts.append(control.verdicts(pd.concat(per_seed)).verdict.iloc[0])
        naive.append(control.verdicts(pd.DataFrame(size_only)).verdict.iloc[0])
        found.append(control.verdicts(pd.concat(extra)).verdict.iloc[0])
    assert np.mean(np.array(verdicts) == "within") >= 0.85   # 0.95 expected; binomial sd 0.035
    assert np.mean(np.array(naive) == "above") >= 0.8
    assert np.mean(np.array(found) == "above") > 0.9


def test_mid_rank_p_and_verdict_signs():
    assert control.mid_rank_p(10.0, np.arange(9.0)) == pytest.approx(0.05)
    assert control.mid_rank_p(-1.0, np.arange(9.0)) == pytest.approx(0.95)
    assert control.mid_rank_p(4.0, np.full(9, 4.0)) == pytest.approx(0.5)
    rows = pd.DataFrame({"class": "TxtD", "readout": "gap", "size": 5, "seed": [0, 1, 2],
                         "change": [-1.0, -1.1, -0.9], "random mean": [0.0, 0.1, -0.1],
                         "p above": [0.99, 0.99, 0.99], "n random": 200, "matched": 1.0})
    v = control.verdicts(rows).iloc[0]
    assert v.verdict == "below" and v.value == pytest.approx(-1.0) and v.high < 0 and v.p < 0.01


def test_carried_and_config_errors():
    z_x = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    z_y = torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    c = control.carried(z_x, z_y)
    assert c["image energy"].tolist() == [5.0, 0.0] and c["caption energy"].tolist() == [0.0, 2.0]
    assert c["image firing"].tolist() == [1.0, 0.0] and c["caption firing"].tolist() == [0.0, 0.5]
    assert c["energy"].tolist() == [2.5, 1.0] and c["firing"].tolist() == [1.0, 0.5]
    with pytest.raises(ValueError, match="unknown quantities"):
        control.ControlConfig(match=("mass",))
    with pytest.raises(ValueError, match="must exceed 1"):
        control.ControlConfig(tolerance=0.5)
    with pytest.raises(ValueError, match="one row per latent"):
        control.compare(lambda s: {"x": 0.0}, ["ImgD"], c)


def small_world(n=60, members=8):
    rng = np.random.default_rng(1)
    carry = pd.DataFrame({q: np.exp(rng.normal(0, 0.5, n)) for q in control.CARRIED})
    labels = np.array(["CMD"] * n, dtype=object)
    labels[:members] = "ImgD"
    return carry, labels


def test_compare_ranks_a_class_effect_above_and_a_constant_readout_in_the_middle():
    carry, labels = small_world()
    cfg = control.ControlConfig(n_random=30, seed=0)
    effect = lambda s: {"x": float(np.isin(s, np.arange(8)).sum())}   # only the class's latents count
    got = control.compare(effect, labels, carry, cfg, classes=("ImgD",)).iloc[0]
    assert got.change == 8 and got["p above"] < 0.05 and got["n random"] == 30 and got.note == ""
    flat = control.compare(lambda s: {"x": 1.0}, labels, carry, cfg, classes=("ImgD",)).iloc[0]
    assert flat["p above"] == pytest.approx(0.5)
    v = control.verdicts(control.compare(effect, labels, carry, cfg, classes=("ImgD",)).assign(seed=0))
    assert v.verdict.iloc[0] == "above" and np.isnan(v.low.iloc[0])   # one seed: no interval over seeds


def test_nan_readouts_are_left_out_and_classes_without_control_are_said():
    carry, labels = small_world()
    cfg = control.ControlConfig(n_random=20, seed=0)
    calls = iter(range(1000))
    flaky = lambda s: {"x": np.nan if next(calls) % 5 == 3 else float(len(s))}
    got = control.compare(flaky, labels, carry, cfg, classes=("ImgD",)).iloc[0]
    assert got["n random"] < 20 and np.isfinite(got["p above"])   # the NaN random sets are dropped
    assert np.isnan(control.mid_rank_p(np.nan, np.arange(3.0)))
    big = np.array(["CMD"] * 60, dtype=object)
    big[:40] = "ImgD"
    rows = control.compare(lambda s: {"x": 0.0}, big, carry, cfg, classes=("ImgD",))
    assert rows.note.iloc[0].startswith("no control") and np.isnan(rows["p above"].iloc[0])
    assert control.verdicts(rows.assign(seed=0)).verdict.iloc[0] == "no control"
    empty = control.compare(lambda s: {"x": 0.0}, big, carry, cfg, classes=("TxtD",))
    assert empty.empty and "p above" in empty.columns
    assert control.verdicts(empty.assign(seed=0)).empty


def test_too_few_random_sets_are_undecidable():
    rows = pd.DataFrame({"class": "ImgD", "readout": "x", "size": 5, "seed": [0, 1, 2], "change": 1.0,
                         "random mean": 0.0, "p above": 0.5 / 3, "n random": 2, "matched": 1.0})
    assert control.verdicts(rows).verdict.iloc[0] == "undecidable"   # best reachable p = 0.094
    assert control.verdicts(rows.assign(**{"n random": 9, "p above": 0.05})).verdict.iloc[0] == "above"


def test_a_side_the_class_does_not_carry_is_not_extrapolated():
    """An image-only class carries no caption energy; no stand-in carries as little. The adjustment must not
    extrapolate to it (it did, to values thousands of times the readout's range): that side is reported
    unmatched and the value at the class's totals stays among the random sets'."""
    rng = np.random.default_rng(2)
    n = 200
    carry = pd.DataFrame({q: np.exp(rng.normal(0, 0.5, n)) for q in control.CARRIED})
    carry.loc[:19, ["caption energy", "caption firing"]] = 1e-9
    labels = np.array(["CMD"] * n, dtype=object)
    labels[:20] = "ImgD"
    e = carry["image energy"].to_numpy() + carry["caption energy"].to_numpy()
    per_side = ("image energy", "caption energy", "image firing", "caption firing")
    got = control.compare(lambda s: {"x": float(e[s].sum())}, labels, carry,
                          control.ControlConfig(seed=0, match=per_side), classes=("ImgD",)).iloc[0]
    assert "caption energy" in got.unmatched and got.adjusted >= 1   # adjusted where the totals interpolate
    assert got["random 2.5%"] <= got["random mean"] <= got["random 97.5%"]
    assert abs(got["random mean"]) < 10 * e.sum()


def test_a_class_no_random_set_carries_as_much_as_gets_no_verdict():
    """Image-heavy latents against a pool that carries a tenth of their image energy: every random set removes
    far less, so the class's larger change says nothing about the class ('no control', with the reason);
    the same class against a pool that carries as much gets its verdict."""
    rng = np.random.default_rng(3)
    n = 300
    carry = pd.DataFrame({q: np.exp(rng.normal(0, 0.2, n)) for q in control.CARRIED})
    labels = np.array(["CMD"] * n, dtype=object)
    labels[:10] = "ImgD"
    e = carry["image energy"].to_numpy()
    readout = lambda s: {"x": float(e[s].sum())}
    cfg = control.ControlConfig(seed=0, match=control.IMAGE_SIDE)
    fair = control.compare(readout, labels, carry, cfg, classes=("ImgD",)).iloc[0]
    assert fair.note == "" and np.isfinite(fair["p above"])
    carry.loc[:9, "image energy"] *= 10
    e = carry["image energy"].to_numpy()
    got = control.compare(readout, labels, carry, cfg, classes=("ImgD",)).iloc[0]
    assert got.note.startswith("no control: the random sets carry") and "image energy" in got.note
    assert np.isnan(got["p above"])
    assert control.verdicts(pd.DataFrame([got]).assign(seed=0)).verdict.iloc[0] == "no control"


def test_a_class_too_large_for_a_control_gets_one_dose_by_dose():
    """40 of 60 latents are ImgD: no control as a whole, but its first k latents (score order) face k
    matched latents drawn outside the whole class; where only the first 8 carry the effect, the small doses
    are 'above' and the curve says how far the class's effect reaches."""
    carry, _ = small_world()
    labels = np.array(["CMD"] * 60, dtype=object)
    labels[:40] = "ImgD"
    scores = np.where(labels == "ImgD", np.linspace(1, 0.7, 60), 0.5)
    rank = control.score_rank(labels, scores)
    assert list(np.argsort(-rank)[:3]) == [0, 1, 2]          # ImgD: the highest scores go first
    calls = []
    effect = lambda s: calls.append(len(s)) or {"x": float(np.isin(s, np.arange(8)).sum())}
    cfg = control.ControlConfig(n_random=30, seed=0)
    got = control.dose_response(effect, labels, rank, carry, [1, 4, 8, 16, 40, 100], cfg, classes=("ImgD",))
    by = got.set_index("dose")
    assert list(by.index) == [1, 4, 8, 16]     # 16 of the 20 outside: the sets overlap, the curve ends
    assert (by.loc[[1, 4, 8], "p above"] < 0.05).all() and by.loc[8, "change"] == 8
    assert by.loc[16, "note"].startswith("no control") and 16 not in calls   # said, never read out
    v = control.verdicts(got.assign(seed=0), by=("class", "dose", "readout")).set_index("dose")
    assert v.loc[4, "verdict"] == "above" and v.loc[16, "verdict"] == "no control"
    txt = control.score_rank(np.array(["TxtD", "TxtD", "CMD", "CMD"], dtype=object), [0.1, 0.3, 0.5, 0.9])
    assert txt[0] > txt[1] and txt[2] > txt[3]                  # TxtD lowest first; CMD most balanced first


def test_dose_order_breaks_ties_by_energy():
    carry, _ = small_world()
    labels = np.array(["CMD"] * 60, dtype=object)
    labels[:10] = "ImgD"
    rank = control.score_rank(labels, np.where(labels == "ImgD", 1.0, 0.5))   # every ImgD share ties at 1
    seen = []
    control.dose_response(lambda s: seen.append(list(s)) or {"x": 0.0}, labels, rank, carry, [1],
                          control.ControlConfig(n_random=5, seed=0), classes=("ImgD",))
    heaviest = int(np.argmax(carry["energy"].to_numpy()[:10]))
    assert next(c for c in seen if c) == [heaviest]   # the first edit: the class's first latent
