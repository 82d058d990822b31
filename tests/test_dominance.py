import numpy as np
import pytest
import torch

from mdsgap.attribution import dominance as D


def t(a):
    return torch.tensor(a, dtype=torch.float32)


def test_hand_computed_ratio_mass_and_frequency():
    # feature 0: image-only; feature 1: text-only; feature 2: both alike; feature 3: mixed
    ax = t([[2.0, 0.0, 1.0, 3.0], [1.0, 0.0, 1.0, 0.0]])
    ay = t([[0.0, 1.0, 1.0, 1.0], [0.0, 2.0, 1.0, 1.0]])
    assert D.mds(ax, ay).tolist() == pytest.approx([1.0, 0.0, 0.5, (0.75 + 0.0) / 2])
    assert D.mds(ax, ay, "mass")[3] == pytest.approx(3 / 5)
    assert D.mds(ax, ay, "frequency")[3] == pytest.approx(1 / 3)


def test_only_firing_pairs_count_for_ratio():
    ax = t([[1.0], [0.0], [0.0]])
    ay = t([[0.0], [0.0], [0.0]])
    assert D.mds(ax, ay)[0] == 1.0  # the two silent pairs do not pull it towards anything


def test_all_zero_feature_is_dead_not_a_crash():
    ax, ay = torch.zeros(10, 2), torch.zeros(10, 2)
    ax[:, 1] = 1.0
    stats = D.DominanceStats(2).update(ax, ay)
    scores = stats.scores()
    assert np.isnan(scores[0]) and scores[1] == 1.0
    labels = D.classify(scores, stats.firing(), D.Thresholds(0.3, 0.7))
    assert labels.tolist() == [D.DEAD, D.IMGD]


def test_rare_features_are_labelled():
    ax = torch.zeros(100, 1)
    ax[:2] = 1.0
    stats = D.DominanceStats(1).update(ax, torch.zeros(100, 1))
    assert D.classify(stats.scores(), stats.firing(), D.Thresholds(0.3, 0.7), min_pairs=5)[0] == D.RARE


def test_one_modality_only():
    ax = torch.rand(50, 3) + 0.1
    assert np.allclose(D.mds(ax, torch.zeros(50, 3)), 1.0)
    assert np.allclose(D.mds(torch.zeros(50, 3), ax), 0.0)


def test_ties_at_thresholds_go_to_cmd():
    scores = np.array([0.3, 0.7, 0.5])
    labels = D.classify(scores, np.array([10, 10, 10]), D.Thresholds(0.3, 0.7))
    assert labels.tolist() == [D.CMD, D.CMD, D.CMD]


def test_streaming_equals_in_memory():
    g = torch.Generator().manual_seed(0)
    ax = torch.relu(torch.randn(1000, 16, generator=g))
    ay = torch.relu(torch.randn(1000, 16, generator=g) - 0.5)
    whole = D.mds(ax, ay)
    stream = D.dominance_stats(zip(ax.split(128), ay.split(128)), 16).scores()
    assert np.allclose(whole, stream)
    for v in D.VARIANTS:
        assert np.allclose(D.mds(ax, ay, v), D.dominance_stats(zip(ax.split(77), ay.split(77)), 16).scores(v))


def test_std_thresholds_and_classes():
    scores = np.array([0.0, 0.5, 0.5, 0.5, 1.0, np.nan])
    th = D.std_thresholds(scores, k=1.0)
    s = scores[:5]
    assert th.low == pytest.approx(s.mean() - s.std()) and th.high == pytest.approx(s.mean() + s.std())
    labels = D.classify(scores, np.array([9, 9, 9, 9, 9, 0]), th)
    assert labels.tolist() == [D.TXTD, D.CMD, D.CMD, D.CMD, D.IMGD, D.DEAD]
    assert D.class_counts(labels)[D.CMD] == 3


def test_bootstrap_interval_classification():
    g = torch.Generator().manual_seed(1)
    n = 400
    img = torch.rand(n, 1, generator=g) + 1.0         # fires on both, mostly image
    both = torch.rand(n, 1, generator=g) + 1.0        # same on both sides
    ax = torch.cat([img, both, torch.zeros(n, 1)], 1)
    ay = torch.cat([0.1 * img, both, torch.zeros(n, 1)], 1)
    stats = D.DominanceStats(3, n_boot=50, seed=0).update(ax, ay)
    labels, lo, hi = D.classify_ci(stats.boot_scores(), stats.firing(), band=0.1)
    assert labels.tolist() == [D.IMGD, D.CMD, D.DEAD]
    assert lo[0] <= stats.scores()[0] <= hi[0]


def test_bad_shapes_and_variant_names():
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        D.DominanceStats(3).update(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="Available"):
        D.mds(torch.ones(2, 2), torch.ones(2, 2), "median")
