import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mdsgap import dominance as D
from mdsgap import groundtruth as G
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


def test_assign_factors_finds_planted_features():
    p = world.generate(world.WorldConfig(), 600, seed=0)
    f = p.factors
    n = len(f)
    ax, ay = np.zeros((n, 4)), np.zeros((n, 4))
    red = (f.colour == "red").to_numpy()
    stripes = (f.texture == "stripes").to_numpy()
    lovely = (f.tone == "lovely").to_numpy()
    ax[:, 0], ay[:, 0] = red, red * f.mentioned_colour.to_numpy()   # shared: fires on both sides
    ax[:, 1] = stripes                                                # vision-only
    ay[:, 2] = lovely                                                 # language-only
    ax[:, 3] = np.random.default_rng(0).random(n)                     # noise
    out = G.assign_factors(ax, ay, f, floor=0.75)
    assert tuple(out.loc[0, ["factor", "value", "expected"]]) == ("colour", "red", D.CMD)
    assert tuple(out.loc[1, ["factor", "value", "side", "expected"]]) == ("texture", "stripes", "image", D.IMGD)
    assert tuple(out.loc[2, ["factor", "value", "side", "expected"]]) == ("tone", "lovely", "text", D.TXTD)
    assert pd.isna(out.loc[3, "expected"])


def test_confusion_accuracy_and_random_control():
    pred = np.array([D.CMD, D.IMGD, D.TXTD, D.CMD, D.RARE, D.IMGD], dtype=object)
    exp = np.array([D.CMD, D.IMGD, D.CMD, None, D.CMD, D.TXTD], dtype=object)
    m = G.confusion(pred, exp)
    assert m.loc[D.CMD, D.CMD] == 1 and m.loc[D.CMD, D.TXTD] == 1 and m.values.sum() == 4
    assert G.accuracy(pred, exp) == pytest.approx(2 / 4)
    ctrl = G.random_partition_accuracy(pred, exp, n_perm=500)
    assert 0.2 < ctrl.mean() < 0.5
