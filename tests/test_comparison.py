import numpy as np
import pandas as pd
import pytest

from mdsgap import attribution as A
from mdsgap.attribution import comparison as C
from mdsgap.attribution import dominance as D
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
    per_latent = C.check("energy_bimodal", zx, zy, f)
    h = per_latent.hits()
    assert h[h.expected == D.CMD].hit.mean() == 0.0            # the split 'red' latents look one-sided
    concept = C.check("concept_coactivation", zx, zy, f)
    u = concept.units.dropna(subset=["expected"])
    assert len(u) == 3 and (u.expected == u.predicted).all()     # red: CMD, striped: ImgD, lovely: TxtD
    assert concept.hits().hit.mean() == 1.0
    # shuffled captions: no pair survives, so the cross-modal concept is lost
    s = concept.shuffled.dropna(subset=["expected"])
    assert (s.predicted != D.CMD).all()


def test_comparison_errors_and_accuracy_table():
    zx, zy, f = _split_world(600)
    with pytest.raises(ValueError, match="needs the feature set's decoder"):
        C.attribute("bridge", zx, zy)
    with pytest.raises(ValueError, match="Unknown attribution method"):
        C.attribute("vibes", zx, zy)
    res = {("planted", m, s): C.check(m, *_split_world(600, seed=s)) for m in ("concept_coactivation",) for s in (0, 1)}
    t = C.accuracy_table(res, n_perm=50)
    t = t.set_index(["condition", "expected"])
    assert t.loc[("method", "all")].value == 1.0 and t.loc[("method", "all")].seeds == 2
    assert t.loc[("method", "all")].coverage == 1.0
    # the side-only baseline calls every paired concept CMD (each fires on both sides): right for 'red' only
    assert t.loc[("side only", "all")].value == pytest.approx(1 / 3)


def test_hits_score_units_from_any_ground_truth_with_coverage_and_the_extremes_apart():
    units = pd.DataFrame({
        "expected": [D.IMGD, D.IMGD, D.TXTD, D.CMD, D.IMGD, None],
        "kind": ["vision-dominant", "vision-dominant", "language-dominant", "cross-modal", "vision-only", None],
        "predicted": [D.IMGD, D.RARE, D.CMD, D.CMD, D.IMGD, D.CMD],
        "side only": [D.IMGD, D.IMGD, D.TXTD, D.IMGD, D.IMGD, D.CMD]})
    h = C.hits(units)
    assert list(h.expected) == [D.IMGD, D.IMGD, D.TXTD, D.CMD, "ImgD, only"]
    assert list(h.classified) == [True, False, True, True, True]
    assert list(h.hit.fillna(-1)) == [1, -1, 0, 1, 1]
    side = C.hits(units, "side only")            # the baseline on the units the method classed
    assert list(side.hit.fillna(-1)) == [1, -1, 1, 0, 1]
    t = C.accuracy_table({("gt", "m", 0): units, ("gt", "m", 1): units}, n_perm=20).set_index(
        ["condition", "expected"])
    assert t.loc[("method", D.IMGD)].coverage == 0.5 and t.loc[("method", D.IMGD)].value == 1.0
    assert t.loc[("method", "all")].coverage == 0.75 and t.loc[("method", "all")].value == pytest.approx(2 / 3)
    assert t.loc[("method", "ImgD, only")].units == 1
    assert ("shuffled pairing", "all") not in t.index
    with pytest.raises(ValueError, match="side_only"):
        C.hits(units.drop(columns="side only"), "side only")
    # the random partition's probabilities land on their own units, whatever comes before them
    mixed = pd.DataFrame({"expected": [D.TXTD, None, D.TXTD, D.IMGD, D.CMD],
                          "predicted": [D.RARE, D.IMGD, D.IMGD, D.IMGD, D.TXTD]})
    rp = C.hits(mixed, "random partition", n_perm=200)
    assert list(rp.expected) == [D.TXTD, D.TXTD, D.IMGD, D.CMD]
    assert np.isnan(rp.hit.iloc[0]) and rp.hit.iloc[1] < rp.hit.iloc[2] and rp.hit.iloc[3] == 0.0


def test_side_only_reads_nothing_but_where_a_unit_fires():
    zx = np.array([[1, 0, 1, 0], [1, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]] * 5, dtype=float)
    zy = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]] * 5, dtype=float)
    assert list(C.side_only(zx, zy)) == [D.IMGD, D.TXTD, D.CMD, D.DEAD]


def test_probe_partners_recover_the_share_of_split_concepts_and_need_the_pairing():
    from mdsgap.attribution import groundtruth
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
    fit = C.sweep_fit(pd.DataFrame(rows)).set_index("quantity")
    assert list(fit.columns) == ["value", "low", "high"]
    assert fit.value["slope"] == pytest.approx(0.5, abs=0.02)
    assert fit.value["intercept"] == pytest.approx(0.2, abs=0.02)
    assert fit.low["slope"] < 0.5 < fit.high["slope"]


def test_ideal_curves_and_ranking_and_target():
    assert C.ideal("mds_interval", 1.0, 0.5) == pytest.approx(0.75)
    assert C.ideal("probe_partner", 0.25, 1.0) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="no ideal curve"):
        C.ideal("bridge", 1.0, 1.0)
    rows = []
    for method, accs in (("good", (0.9, 0.85, 0.95)), ("lopsided", (1.0, 1.0, 0.1))):
        for cls, a in zip(D.CLASSES, accs):
            rows.append({"tool": "t", "method": method, "condition": "method", "expected": cls, "value": a,
                         "low": a - 0.05, "high": a + 0.05, "coverage": 0.9})
            rows.append({"tool": "t", "method": method, "condition": "random partition", "expected": cls,
                         "value": 0.33, "low": 0.3, "high": 0.36})
            rows.append({"tool": "t", "method": method, "condition": "side only", "expected": cls,
                         "value": 0.6, "low": 0.5, "high": 0.7})
        rows.append({"tool": "t", "method": method, "condition": "method", "expected": "all", "value": 0.9,
                     "low": 0.8, "high": 1.0, "coverage": 0.9 if method == "good" else 0.5})
    acc = pd.DataFrame(rows)
    assert list(C.ranking(acc).method) == ["good", "lopsided"]    # the worst class decides
    assert C.meets_target(acc, "t", "good")["met"]
    assert C.meets_target(acc, "t", "lopsided")["short"] == [D.CMD, "coverage"]
    beaten = acc.assign(value=np.where(acc.condition == "side only", 0.85, acc.value))
    assert C.meets_target(beaten, "t", "good")["short"] == [D.IMGD, D.TXTD]  # lower ends 0.85, 0.8
    fits = pd.DataFrame([{"tool": "t", "method": "good", "axis": a, "quantity": q, "value": v}
                         for a, v in (("p", 0.95), ("q", 0.7)) for q in ("slope", "intercept")])
    got = C.meets_target(acc, "t", "good", fits)
    assert not got["met"] and got["short"] == ["q"]
    assert C.meets_target(acc, "t", "good", fits.assign(value=[1.05, 0.0, 0.92, 0.0]))["met"]
    summary = C.accuracy_summary(acc.assign(condition=acc.condition).pipe(
        lambda a: pd.concat([a, a[a.condition == "method"].assign(condition="shuffled pairing", value=0.0)])))
    assert summary.set_index("method").loc["good", D.IMGD] == "0.90 [0.85, 0.95]"
    assert summary.set_index("method").loc["good", f"{D.IMGD} shuffled"] == "0.00"


def test_misses_say_where_the_units_of_a_class_go():
    units = pd.DataFrame({"factors": [("size",), ("size",), ("texture",), ("shape",), ("colour", "size")],
                          "expected": [D.IMGD] * 3 + [D.CMD, D.IMGD], "share": [0.8] * 3 + [0.5, 0.8],
                          "predicted": [D.IMGD, D.CMD, D.CMD, D.CMD, D.IMGD],
                          "dominance": [0.9, 0.6, 0.5, 0.5, 0.7]})
    r = C.Result("m", units, units, None)
    got = C.misses({("t", "m", 0): r}, "t", "m", D.IMGD)
    assert got.loc["size", D.CMD] == 0.5 and got.loc["texture", D.CMD] == 1.0 and "shape" not in got.index
    assert got.loc["size", "units"] == 2 and got.loc["size", "score"] == pytest.approx(0.75)
    assert got.loc["colour & size", D.IMGD] == 1.0 and got.loc["colour & size", "ideal"] == 0.8


def test_pair_aware_needs_the_cmd_share_to_fall_on_every_tool():
    idx = pd.MultiIndex.from_tuples([("a", "m1"), ("b", "m1"), ("a", "m2"), ("b", "m2")], names=["tool", "method"])
    shares = pd.DataFrame({"true pairs": [0.6, 0.5, 0.6, 0.5], "shuffled pairs": [0.1, 0.0, 0.6, 0.1]}, index=idx)
    assert C.pair_aware(shares).to_dict() == {"m1": ["a", "b"], "m2": ["b"]}


def _one_sided(n=4000, seed=0, noise=0.05):
    """Clean one-sided latents on near one-hot embeddings (`groundtruth.factor_embedding` plus noise):
    0 fires on images showing a large object (size: binary, named in a quarter of captions), 1 on captions
    naming 'at night' (time: binary, shown in a quarter of images), 2 on images with a striped background
    (texture: four values), 3 on captions with the word 'lovely' (tone: four values)."""
    from mdsgap.attribution import groundtruth
    f = world.generate(world.WorldConfig(), n, seed=seed).factors
    e = groundtruth.factor_embedding(f)
    e = e + np.random.default_rng(seed).normal(0, noise, e.shape)
    x, y = e[:n], e[n:]
    zx, zy = np.zeros((n, 4)), np.zeros((n, 4))
    for k, (name, value, side) in enumerate((("size", "large", "image"), ("time", "night", "text"),
                                              ("texture", "striped", "image"), ("tone", "lovely", "text"))):
        on = (f[name] == value).to_numpy()
        if side == "image":
            zx[:, k] = on & f[f"shown_{name}"].to_numpy()
        else:
            zy[:, k] = on & f[f"mentioned_{name}"].to_numpy()
    return zx, zy, x, y


@pytest.mark.parametrize("reference", ["prior", "absent"])
@pytest.mark.parametrize("noise", [0.05, 0.25])
def test_probe_partners_do_not_fire_on_captions_silent_about_a_binary_factor(noise, reference):
    import dataclasses
    zx, zy, x, y = _one_sided(noise=noise)
    partners = A.fit_probe_partners(zx, zy, x, y, reference=reference)
    got = partners.shares(zx, zy, x, y)
    ideal = np.array([world.ideal_share(1, 0.25), world.ideal_share(0.25, 1)] * 2)
    assert got == pytest.approx(ideal, abs=0.02 if noise < 0.1 else 0.1)
    labels = C.share_classes(got, np.full(4, 100), 5)
    assert list(labels) == [D.IMGD, D.TXTD] * 2
    # the old rule, half the plateau: a silent caption predicts the value's base rate times the plateau,
    # half the plateau for a binary factor, so about half of the silent captions fire
    plateau = A.fit_probe_partners(zx, zy, x, y, fraction=1.0).threshold
    old = dataclasses.replace(partners, threshold=0.5 * plateau).shares(zx, zy, x, y)
    assert abs(old[0] - ideal[0]) > 0.15 and abs(old[1] - ideal[1]) > 0.15  # binary factors leak
    assert np.abs(got - ideal)[:2].max() < np.abs(old - ideal)[:2].min()


def test_unit_counts_say_how_many_units_and_factors_each_class_rests_on():
    units = pd.DataFrame({
        "expected": [D.IMGD, D.IMGD, D.CMD, D.IMGD, None], "single": [D.IMGD, D.CMD, D.CMD, D.IMGD, None],
        "kind": ["vision-dominant", "vision-dominant", "cross-modal", "vision-only", None],
        "conjunction": [None, "colour = red & size = large", None, None, None],
        "factors": [("size",), ("colour", "size"), ("shape",), ("outline",), ()],
        "side": ["text", "image", "image", "image", None]})
    got = C.unit_counts([units, units])
    assert got.loc[D.IMGD].tolist() == [4, 2, 2, 2, 1, 2, 2, 2]  # units, per seed, fewest, conjunctions,
    # read on images per seed, factors (all seeds, fewest in a seed), moved
    assert got.loc[D.TXTD, "units"] == 0 and got.loc["ImgD, only", "factors"] == 1
    fewer = C.unit_counts([units, units.iloc[1:]])        # the second seed lost an ImgD unit
    assert fewer.loc[D.IMGD, "units per seed"] == 1.5 and fewer.loc[D.IMGD, "fewest in a seed"] == 1
    assert fewer.loc[D.IMGD, "factors"] == 2 and fewer.loc[D.IMGD, "fewest factors in a seed"] == 2
    assert C.unit_counts([units, units.iloc[[0, 3]]]).loc[D.IMGD, "fewest factors in a seed"] == 1


def test_probe_partner_reference_must_be_known():
    zx, zy, x, y = _one_sided(n=200)
    with pytest.raises(ValueError, match="'prior' or 'absent'"):
        A.fit_probe_partners(zx, zy, x, y, reference="median")


def test_methods_score_against_any_generator_of_paired_embeddings():
    """The head-to-head without the world: a generator of paired embeddings with one axis per concept,
    shown and named with known (q, p), gives every unit its expected class; `attribute` classes the
    units and `accuracy_table` scores them with the side-only baseline beside."""
    rng = np.random.default_rng(0)
    n, concepts = 3000, {"image-dominant": (1.0, 0.25), "caption-dominant": (0.25, 1.0), "shared": (1.0, 1.0)}
    x, y = rng.normal(0, 0.01, (n, 3)), rng.normal(0, 0.01, (n, 3))
    for c, (q, p) in enumerate(concepts.values()):
        active = rng.random(n) < 0.5
        x[:, c] += active & (rng.random(n) < q)
        y[:, c] += active & (rng.random(n) < p)
    truth = [{"expected": {"image-dominant": D.IMGD, "caption-dominant": D.TXTD, "shared": D.CMD}[k],
              "kind": world.kind_of(*qp)} for k, qp in concepts.items()]
    zx, zy = np.maximum(x, 0.0), np.maximum(y, 0.0)
    scored = {}
    for method in ("energy_cuts", "mds_std"):
        att = C.attribute(method, zx, zy)
        scored[("axes", method, 0)] = pd.DataFrame(truth).assign(predicted=att.labels,
                                                                 **{"side only": C.side_only(zx, zy)})
    acc = C.accuracy_table(scored, n_perm=50).set_index(["method", "condition", "expected"])
    assert acc.loc[("energy_cuts", "method", "all")].value == 1.0
    assert acc.loc[("energy_cuts", "side only", "all")].value == pytest.approx(1 / 3)  # only 'shared'
    assert acc.loc[("energy_cuts", "method", "all")].coverage == 1.0
    # the paper's MDS averages per-pair shares: the image-dominant axis (ideal MDS 0.875) stays ImgD
    assert acc.loc[("mds_std", "method", D.IMGD)].value == 1.0


def test_methods_are_identifiers_and_the_page_shows_their_labels():
    """Code, tables and tests key methods and labellings by identifier; `label` and `labelled` give the page's
    names, in columns and index levels alike, and leave anything else as it is."""
    assert all(m.isidentifier() for m in C.METHODS) and set(C.LABELLINGS.values()) <= set(C.METHODS)
    assert C.label("mds_interval") == "MDS, interval" and C.label("partner") == "probe partner"
    assert C.label("TopK") == "TopK"
    t = pd.DataFrame({"tool": ["TopK", "Aligned"], "method": ["mds_interval", "probe_partner"], "v": [1, 2]})
    shown = C.labelled(t)
    assert list(shown.method) == ["MDS, interval", "probe partner"] and list(t.method) == ["mds_interval",
                                                                                            "probe_partner"]
    indexed = C.labelled(t.set_index(["tool", "method"]))
    assert list(indexed.index.get_level_values("method")) == ["MDS, interval", "probe partner"]
    assert list(C.labelled(t.set_index("method")).index) == ["MDS, interval", "probe partner"]
    with pytest.raises(ValueError, match="Available"):
        C.attribute("MDS, interval", np.zeros((4, 2)), np.zeros((4, 2)))
