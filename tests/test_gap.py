import math

import numpy as np
import pytest
import torch

from mdsgap import gap, stats


def unit(a):
    a = np.asarray(a, dtype=float)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_l2m_hand_computed():
    x = [[1, 0], [1, 0]]
    y = [[0, 1], [0, 1]]
    assert gap.l2m(x, y) == pytest.approx(math.sqrt(2))
    assert gap.gap_vector(x, y).tolist() == pytest.approx([1, -1])


def test_metrics_normalise_their_inputs():
    x = torch.tensor([[3.0, 0.0], [0.0, 5.0]])
    y = torch.tensor([[2.0, 0.0], [0.0, 0.5]])
    assert gap.l2m(x, y) == pytest.approx(0.0, abs=1e-12)
    assert gap.l2i(x, y) == pytest.approx(0.0, abs=1e-12)


def test_l2i_hand_computed():
    x = [[1, 0], [0, 1]]
    y = [[0, 1], [0, 1]]  # first pair orthogonal (distance sqrt 2), second identical
    assert gap.l2i(x, y) == pytest.approx(math.sqrt(2) / 2)


def test_cone_matches_plain_loop():
    rng = np.random.default_rng(0)
    x = unit(rng.normal(size=(30, 5)) + 1.0)
    loop = np.mean([x[i] @ x[j] for i in range(30) for j in range(30) if i != j])
    assert gap.cone(x) == pytest.approx(loop, rel=1e-10)


def test_cone_extremes():
    assert gap.cone([[1, 0], [1, 0], [1, 0]]) == pytest.approx(1.0)
    assert gap.cone([[1, 0], [-1, 0]]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least two"):
        gap.cone([[1, 0]])


def test_rmg_matches_definition():
    rng = np.random.default_rng(1)
    x, y = unit(rng.normal(size=(20, 4))), unit(rng.normal(size=(20, 4)))
    m = max((1 - np.mean(np.sum(x * y, 1))) / 2, 1e-3)
    dx = (1 - np.mean([x[i] @ x[j] for i in range(20) for j in range(20) if i != j])) / 2
    dy = (1 - np.mean([y[i] @ y[j] for i in range(20) for j in range(20) if i != j])) / 2
    assert gap.rmg(x, y) == pytest.approx(m / (m + (dx + dy) / 2), rel=1e-10)


def test_rmg_of_identical_modalities_is_small_and_clamped():
    rng = np.random.default_rng(2)
    x = unit(rng.normal(size=(50, 8)))
    # m is clamped at 1e-3, so RMG is tiny but positive
    assert 0 < gap.rmg(x, x) < 0.01


def test_separability_finds_an_offset_and_not_shuffled_labels():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(400, 16))
    x = base + np.r_[3.0, np.zeros(15)]
    y = base - np.r_[3.0, np.zeros(15)]
    assert gap.linear_separability(x, y) > 0.95
    for seed in range(3):  # the control task sits at chance even though the modalities separate perfectly
        assert abs(gap.linear_separability(x, y, seed=seed, shuffle_labels=True) - 0.5) < 0.1


def test_separability_of_identical_clouds_is_chance():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 16))
    y = x[rng.permutation(400)]
    assert abs(gap.linear_separability(x, y) - 0.5) < 0.1


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="2-D"):
        gap.l2m(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="width"):
        gap.l2m(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="matched pairs"):
        gap.l2i(np.ones((2, 3)), np.ones((3, 3)))


def test_pairwise_cosines_excludes_the_diagonal():
    x = unit(np.eye(5))
    c = gap.pairwise_cosines(x, max_pairs=1000)
    assert np.all(c == 0)  # orthonormal rows: every off-diagonal cosine is 0, the diagonal would be 1


def test_bootstrap_of_a_gap_metric_brackets_the_estimate():
    from mdsgap import stats

    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(200, 8)) + 1, rng.normal(size=(200, 8)) - 1
    est, lo, hi = stats.bootstrap(gap.l2m, x, y, n_boot=100)
    assert lo <= est <= hi and hi - lo < 0.5


def test_project_2d_separates_an_offset():
    rng = np.random.default_rng(6)
    base = rng.normal(size=(100, 10)) * 0.1
    x, y = base + np.eye(10)[0], base - np.eye(10)[0]
    px, py = gap.project_2d(x, y)
    assert px.shape == (100, 2) and py.shape == (100, 2)
    assert np.sign(px[:, 0].mean()) != np.sign(py[:, 0].mean())


def test_metrics_table_is_in_the_one_layout_with_bootstrap_intervals_around_each_metric():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 8, generator=g) + 3 * torch.eye(8)[0]
    y = torch.randn(60, 8, generator=g) - 3 * torch.eye(8)[0]
    t = gap.metrics_table({"gapped": (x, y), "mixed": (x, x + 0.1 * torch.randn(60, 8, generator=g))},
                          n_boot=50)
    assert list(t.columns[:5]) == ["model", "metric", "value", "low", "high"]
    assert list(dict.fromkeys(t.metric)) == [*gap.METRICS, "linear separability", "separability, control task"]
    at = t.set_index(["model", "metric"])
    l2m = at.loc[("gapped", "L2M")]
    assert l2m.value == pytest.approx(gap.l2m(x, y)) and l2m.low <= l2m.value <= l2m.high
    assert at.loc[("gapped", "L2M"), "low"] > at.loc[("mixed", "L2M"), "high"]   # the gap is seen
    assert np.isnan(at.loc[("gapped", "linear separability"), "low"])
    shown = stats.formatted(t, "metric", columns="model", digits=2)
    assert list(shown.columns) == ["gapped", "mixed"] and "[" not in shown.loc["linear separability", "gapped"]
