import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mdsgap.attribution import dominance as D
from mdsgap.attribution import groundtruth as G
from mdsgap import world


def test_auroc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    acts = np.where(rng.random((200, 3)) < 0.6, 0.0, rng.random((200, 3)))  # many tied zeros
    target = rng.random((200, 2)) < 0.3
    got = G.auroc_matrix(acts, target)
    for f in range(3):
        for t in range(2):
            assert got[f, t] == pytest.approx(roc_auc_score(target[:, t], acts[:, f]))


def test_auroc_is_nan_without_positives():
    assert np.isnan(G.auroc_matrix(np.random.rand(10, 1), np.zeros((10, 1), bool))).all()


@pytest.mark.parametrize("score", ["eta2", "auroc"])
def test_assign_factors_finds_planted_features(score):
    p = world.generate(world.WorldConfig(), 600, seed=0)
    f = p.factors
    n = len(f)
    ax, ay = np.zeros((n, 5)), np.zeros((n, 5))
    red = (f.colour == "red").to_numpy()
    dark = (f.outline == "dark").to_numpy()
    nice = (f.template == "a {}").to_numpy()
    ax[:, 0], ay[:, 0] = red, red * f.mentioned_colour.to_numpy()   # cross-modal: fires on both sides
    ax[:, 1] = dark                                                   # vision-only
    ay[:, 2] = nice                                                   # language-only
    ax[:, 3] = np.random.default_rng(0).random(n)                     # noise
    ax[:3, 4] = 1.0                                                   # fires too rarely to say
    out = G.assign_factors(ax, ay, f, score=score)
    assert tuple(out.loc[0, ["factor", "expected"]]) == ("colour", D.CMD)
    assert tuple(out.loc[1, ["factor", "side", "expected"]]) == ("outline", "image", D.IMGD)
    assert tuple(out.loc[2, ["factor", "side", "expected"]]) == ("template", "text", D.TXTD)
    assert pd.isna(out.loc[3, "expected"])
    assert pd.isna(out.loc[4, "expected"]) and pd.isna(out.loc[4, "score"])


def test_eta_squared_on_constructed_cases():
    values = np.array(["a", "a", "b", "b"] * 10)
    acts = np.stack([(values == "a") * 2.0,                 # a function of the value: 1
                     np.tile([1.0, 0.0], 20),              # independent of the value: 0
                     np.zeros(40)], 1)                     # silent: NaN
    got = G.eta_squared(acts, values, min_support=5)
    assert got[0] == pytest.approx(1.0) and got[1] == pytest.approx(0.0) and np.isnan(got[2])


def test_ideal_mds_of_a_factor_always_shown_is_one_minus_half_its_naming():
    from mdsgap import attribution

    assert attribution.ideal_ratio_mds(1.0, 1.0) == pytest.approx(0.5)
    assert attribution.ideal_ratio_mds(1.0, 0.0) == pytest.approx(1.0)
    assert attribution.ideal_ratio_mds(1.0, 0.5, ratio=0.25) == pytest.approx(0.625)


def test_unknown_score_is_named():
    f = world.generate(world.WorldConfig(), 50, seed=0).factors
    with pytest.raises(ValueError, match="eta2"):
        G.assign_factors(np.zeros((50, 1)), np.zeros((50, 1)), f, score="mi")


def test_confusion_accuracy_and_random_control():
    pred = np.array([D.CMD, D.IMGD, D.TXTD, D.CMD, D.RARE, D.IMGD], dtype=object)
    exp = np.array([D.CMD, D.IMGD, D.CMD, None, D.CMD, D.TXTD], dtype=object)
    m = G.confusion(pred, exp)
    assert m.loc[D.CMD, D.CMD] == 1 and m.loc[D.CMD, D.TXTD] == 1 and m.values.sum() == 4
    assert G.accuracy(pred, exp) == pytest.approx(2 / 4)
    ctrl = G.random_partition_accuracy(pred, exp, n_perm=2000)
    # 5 classified features (2 ImgD, 2 CMD, 1 TxtD) shuffled; 4 of them have an expected class
    # (CMD, ImgD, CMD, TxtD): expected accuracy = (2 * 2/5 + 2/5 + 1/5) / 4 = 0.35
    assert ctrl.mean() == pytest.approx(0.35, abs=0.02)


def test_factor_embedding_cosines_count_shared_values():
    none_named = {name: 0.0 for name in world.NAMEABLE}
    cfg = world.WorldConfig(mention={**none_named, "shape": 1.0, "tone": 1.0}, shown={c: 0.0 for c in world.CUES})
    f = world.generate(cfg, 40, seed=0).factors
    e = G.factor_embedding(f)
    n = len(f)
    assert e.shape[0] == 2 * n
    assert (e[:n].sum(1) == len(world.VISIBLE)).all()               # one value per always-shown factor
    assert (e[n:].sum(1) == 3).all()                                 # the shape, the tone and the template
    # an image and its own caption share exactly the shape
    dots = (e[:n] * e[n:]).sum(1)
    assert (dots == 1).all()


def _planted_world(n=800):
    """Feature 0 fires on red images and on captions naming red (cross-modal); 1 on dark-rimmed images
    (vision-only); 2 on captions in the template "a {}" (language-only)."""
    import torch
    from mdsgap import features
    f = world.generate(world.WorldConfig(), n, seed=0).factors
    red = torch.tensor((f.colour == "red").to_numpy(), dtype=torch.float32)
    dark = torch.tensor((f.outline == "dark").to_numpy(), dtype=torch.float32)
    lovely = torch.tensor((f.template == "a {}").to_numpy(), dtype=torch.float32)
    zero = torch.zeros(n)
    # embeddings carry a modality flag in column 3; the "feature set" reads the planted columns on their side
    x = torch.stack([red, dark, zero, torch.ones(n)], 1)
    y = torch.stack([red, zero, lovely, torch.zeros(n)], 1)
    return features.FeatureSet("planted", 3, lambda e: e[:, :3]), x, y, f


def test_mds_interval_recovers_planted_classes_and_its_controls():
    """The paper's MDS (interval rule) on planted features, through the comparison chapter 4 runs: right on
    every class; a random partition is right a third of the time; shuffled captions leave the red
    feature's default (ratio) MDS near 1/2, since image-only and text-only pairs balance."""
    from mdsgap import features
    from mdsgap.attribution import comparison as C

    fs, x, y, f = _planted_world()
    zx, zy = features.encode_all(fs, x), features.encode_all(fs, y)
    res = C.check("mds_interval", zx, zy, f, opts=C.MethodConfig(k_std=0.5, n_boot=20, min_pairs=5))
    assert list(res.units.expected) == [D.CMD, D.IMGD, D.TXTD]
    assert list(res.units.predicted) == [D.CMD, D.IMGD, D.TXTD] and res.hits().hit.mean() == 1.0
    assert res.shuffled.dominance.iloc[0] == pytest.approx(0.5, abs=0.1)
    assert res.shuffled.predicted.iloc[1] == D.IMGD
    assert res.hits("random partition", n_perm=300).hit.mean() == pytest.approx(1 / 3, abs=0.05)


def test_probe_factors_finds_what_each_side_carries():
    _, x, y, f = _planted_world()
    t = G.probe_factors(x, y, f).set_index(["factor", "side"])
    assert t.loc[("outline", "image"), "accuracy"] == 1.0
    assert ("outline", "text") not in t.index                       # never named: no text probe
    assert t.loc[("colour", "text"), "accuracy"] < 0.5                # the planted text columns carry no colour
                                                                      # beyond red


def test_a_conjunction_gets_the_share_of_both_its_factors():
    f = world.generate(world.WorldConfig(), 3000, seed=0).factors
    n = len(f)
    red, large = (f.colour == "red").to_numpy(), (f["size"] == "large").to_numpy()
    lovely = (f.tone == "lovely").to_numpy()
    ax, ay = np.zeros((n, 3)), np.zeros((n, 3))
    ax[:, 0] = red & large                                   # red and large, on images
    ay[:, 0] = red & large & f.mentioned_size.to_numpy()     # and on captions naming both
    ax[:, 1], ay[:, 1] = red, red                            # red alone: a single factor
    ay[:, 2] = red & lovely                                  # captions naming red and 'lovely'
    out = G.assign_factors(ax, ay, f)
    assert out.loc[0, "conjunction"] == "colour = red & size = large"
    assert (out.loc[0, "single"], out.loc[0, "expected"]) == (D.CMD, D.IMGD)
    assert out.loc[0, "share"] == pytest.approx(world.ideal_share(1, 0.25))
    assert pd.isna(out.loc[1, "conjunction"]) and out.loc[1, "expected"] == D.CMD
    assert out.loc[2, "conjunction"] == "colour = red & tone = lovely"
    assert out.loc[2, "expected"] == D.TXTD and out.loc[2, "share"] == pytest.approx(0.2)
    single = G.assign_factors(ax, ay, f, conjunctions=False)
    assert single.conjunction.isna().all() and list(single.expected) == list(out.single)


def test_silent_firing_catches_a_caption_side_that_fires_without_its_concept():
    f = world.generate(world.WorldConfig(), 2000, seed=0).factors
    large = (f["size"] == "large").to_numpy()
    named = f.mentioned_size.to_numpy(dtype=bool)
    ax = np.stack([large, large], 1).astype(float)
    ay = np.stack([large & named, large], 1).astype(float)   # honest caption side; one that leaks
    units = G.assign_factors(ax, ay, f)
    got = G.silent_firing(ax > 0, ay > 0, units, f)
    assert got[0] == 0.0 and got[1] == 1.0


def test_partner_carries_says_whether_a_partner_reads_both_values_of_a_conjunction():
    f = world.generate(world.WorldConfig(), 2000, seed=0).factors
    red = (f.colour == "red").to_numpy() & f.mentioned_colour.to_numpy(dtype=bool)
    large = (f["size"] == "large").to_numpy() & f.mentioned_size.to_numpy(dtype=bool)
    units = pd.DataFrame({"conjunction": ["colour = red & size = large", "colour = red & size = large", None],
                          "expected": ["ImgD", "ImgD", None], "q": [1.0, 1.0, 1.0], "p": [0.25, 0.25, 1.0]})
    fires = np.stack([red & large, red | large, red], 1)        # a reader of both; of a sum; not a conjunction
    got = G.partner_carries(fires, units, f, np.array(["image", "image", "image"])).set_index("unit")
    assert got.loc[0, "both"] == 1.0 and got.loc[1, "both"] < 0.2 and got.loc[1, "one"] > 0.8
    assert 2 not in got.index
