import numpy as np
import pandas as pd
import pytest

from mdsgap import attribution as A
from mdsgap import comparison as C
from mdsgap import dominance as D
from mdsgap import world

def _split_world(n=1500, seed=0):
    """Codes of three planted concepts in the default world, each split across the gap as a TopK SAE splits
    them: latents 0/1 are the image/caption sides of 'red' (cross-modal), 2/3 of 'striped' (vision-dominant,
    named in a quarter of captions), 4/5 of 'lovely' (language-dominant, shown in a quarter of images)."""
    f = world.generate(world.WorldConfig(), n, seed=seed).factors
    zx, zy = np.zeros((n, 6)), np.zeros((n, 6))
    for k, (name, value) in enumerate((("colour", "red"), ("texture", "striped"), ("tone", "lovely"))):
        on = (f[name] == value).to_numpy()
        zx[:, 2 * k] = 2.0 * (on & f[f"shown_{name}"].to_numpy())        # image side, stronger
        zy[:, 2 * k + 1] = 1.0 * (on & f[f"mentioned_{name}"].to_numpy())  # caption side
    return zx, zy, f


def test_concept_method_recovers_every_class_where_per_latent_scores_fail():
    zx, zy, f = _split_world()
    per_latent = C.check("energy, bimodal rule", zx, zy, f)
    h = per_latent.hits()
    assert h[h.expected == D.CMD].hit.mean() == 0.0            # the split 'red' latents look one-sided
    concept = C.check("concept, co-activation", zx, zy, f)
    u = concept.units.dropna(subset=["expected"])
    assert len(u) == 3 and (u.expected == u.predicted).all()     # red: CMD, striped: ImgD, lovely: TxtD
    assert concept.hits().hit.mean() == 1.0
    # shuffled captions: no pair survives, so the cross-modal concept is lost
    s = concept.shuffled.dropna(subset=["expected"])
    assert (s.predicted != D.CMD).all()


def test_comparison_errors_and_accuracy_table():
    zx, zy, f = _split_world(600)
    with pytest.raises(ValueError, match="needs the feature set's decoder"):
        C.attribute("bridge μ_B", zx, zy)
    with pytest.raises(ValueError, match="Unknown attribution method"):
        C.attribute("vibes", zx, zy)
    res = {("planted", m, s): C.check(m, *_split_world(600, seed=s)) for m in ("concept, co-activation",) for s in (0, 1)}
    t = C.accuracy_table(res, n_perm=50)
    row = t.set_index(["condition", "expected"]).loc[("method", "all")]
    assert row.accuracy == 1.0 and row.seeds == 2


def test_probe_partners_recover_the_share_of_split_concepts_and_need_the_pairing():
    from mdsgap import groundtruth
    zx, zy, f = _split_world(3000)
    e = groundtruth.factor_embedding(f)            # one-hot of what each image shows / caption names
    x, y = e[: len(f)], e[len(f):]
    partners = A.fit_probe_partners(zx, zy, x, y)
    assert list(partners.side) == ["image", "text"] * 3
    got = partners.shares(zx, zy, x, y)
    ideal = [world.ideal_share(1, 1), world.ideal_share(1, 0.25), world.ideal_share(0.25, 1)]
    for k in range(3):                              # both sides of each concept read its image share
        assert got[2 * k] == pytest.approx(ideal[k], abs=0.05)
        assert got[2 * k + 1] == pytest.approx(ideal[k], abs=0.05)
    perm = np.random.default_rng(0).permutation(len(f))
    shuffled = A.fit_probe_partners(zx, zy[perm], x, y[perm])
    assert (shuffled.r2 < shuffled.r2_floor).all()  # no caption predicts an unrelated image: no partner
    assert list(shuffled.shares(zx, zy[perm], x, y[perm])) == [1.0, 0.0] * 3


def test_sweep_fit_recovers_a_planted_line_and_its_interval_covers_it():
    rng = np.random.default_rng(0)
    rows = [{"seed": s, "unit": u, "ideal": v, "measured": 0.2 + 0.5 * v + rng.normal(0, 0.02)}
            for s in range(3) for u in range(20) for v in (0.0, 0.25, 0.5, 0.75, 1.0)]
    fit = C.sweep_fit(pd.DataFrame(rows))
    assert fit["slope"] == pytest.approx(0.5, abs=0.02) and fit["intercept"] == pytest.approx(0.2, abs=0.02)
    assert fit["slope_low"] < 0.5 < fit["slope_high"]


def test_ideal_curves_and_ranking_and_target():
    assert C.ideal("MDS, interval", 1.0, 0.5) == pytest.approx(0.75)
    assert C.ideal("concept, probe partner", 0.25, 1.0) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="no ideal curve"):
        C.ideal("bridge μ_B", 1.0, 1.0)
    rows = []
    for method, accs in (("good", (0.9, 0.85, 0.95)), ("lopsided", (1.0, 1.0, 0.1))):
        for cls, a in zip(D.CLASSES, accs):
            rows.append({"tool": "t", "method": method, "condition": "method", "expected": cls, "accuracy": a,
                         "low": a - 0.05, "high": a + 0.05})
            rows.append({"tool": "t", "method": method, "condition": "random partition", "expected": cls,
                         "accuracy": 0.33, "low": 0.3, "high": 0.36})
    acc = pd.DataFrame(rows)
    assert list(C.ranking(acc).method) == ["good", "lopsided"]    # the worst class decides
    assert C.meets_target(acc, "t", "good")["met"]
    assert C.meets_target(acc, "t", "lopsided")["short"] == [D.CMD]
    fits = pd.DataFrame([{"tool": "t", "method": "good", "axis": "p", "slope": 0.95},
                         {"tool": "t", "method": "good", "axis": "q", "slope": 0.7}])
    got = C.meets_target(acc, "t", "good", fits)
    assert not got["met"] and got["short"] == ["the slope of the showing sweep"]
    assert C.meets_target(acc, "t", "good", fits.assign(slope=[1.05, 0.92]))["met"]
    summary = C.accuracy_summary(acc.assign(condition=acc.condition).pipe(
        lambda a: pd.concat([a, a[a.condition == "method"].assign(condition="shuffled pairing", accuracy=0.0)])))
    assert summary.set_index("method").loc["good", D.IMGD] == "0.90 [0.85, 0.95]"
    assert summary.set_index("method").loc["good", f"{D.IMGD} shuffled"] == "0.00"


def test_misses_say_where_the_units_of_a_class_go():
    units = pd.DataFrame({"factor": ["size", "size", "texture", "shape"], "expected": [D.IMGD] * 3 + [D.CMD],
                          "predicted": [D.IMGD, D.CMD, D.CMD, D.CMD], "dominance": [0.9, 0.6, 0.5, 0.5]})
    r = C.Result("m", units, units, None)
    got = C.misses({("t", "m", 0): r}, "t", "m", D.IMGD)
    assert got.loc["size", D.CMD] == 0.5 and got.loc["texture", D.CMD] == 1.0 and "shape" not in got.index
    assert got.loc["size", "units"] == 2 and got.loc["size", "score"] == pytest.approx(0.75)


def test_pair_aware_needs_the_cmd_share_to_fall_on_every_tool():
    idx = pd.MultiIndex.from_tuples([("a", "m1"), ("b", "m1"), ("a", "m2"), ("b", "m2")], names=["tool", "method"])
    shares = pd.DataFrame({"true pairs": [0.6, 0.5, 0.6, 0.5], "shuffled pairs": [0.1, 0.0, 0.6, 0.1]}, index=idx)
    assert C.pair_aware(shares).to_dict() == {"m1": ["a", "b"], "m2": ["b"]}
    assert C.describe_pair_awareness(shares) == "on every feature set: m1; on some: m2 (b only); on none: none"


def test_describe_fits_says_when_a_method_has_no_sweep():
    fits = pd.DataFrame([{"tool": "t", "method": "m", "axis": a, "slope": 0.9, "slope_low": 0.8, "slope_high": 1.0,
                          "intercept": 0.05} for a in ("p", "q")])
    assert C.describe_fits(fits, "t", "m").startswith("has slope 0.90 [0.80, 1.00] and intercept 0.05")
    assert "no ideal curve" in C.describe_fits(fits, "t", "other")
