import pytest
import torch

from mdsgap import gap
from mdsgap.gap import robustness as R, shifting as SH


def embeddings(n=300, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) + 2.0 * torch.eye(d)[0]
    y = torch.randn(n, d, generator=g) - 2.0 * torch.eye(d)[0]
    return gap.normalize(x), gap.normalize(y)


def test_liang_shift_zero_is_identity_and_shifting_closes_the_gap():
    x, y = embeddings()
    x0, y0 = SH.liang_shift(x, y, 0.0)
    assert torch.allclose(x0, x) and torch.allclose(y0, y)
    x1, y1 = SH.liang_shift(x, y, gap.l2m(x, y))
    assert gap.l2m(x1, y1) < 0.5 * gap.l2m(x, y)
    x2, _ = SH.liang_shift(x, y, -0.5)
    assert gap.l2m(x2, y) > gap.l2m(x, y)  # a negative shift widens it


def test_gap_dimensions_and_dropping_them():
    x, y = embeddings()
    dims = SH.gap_dimensions(x, y)
    assert int(dims[0]) == 0
    dropped = SH.drop_dimensions(x, dims[:1])
    assert torch.allclose(dropped[:, 0], torch.zeros(len(x), dtype=dropped.dtype))
    assert torch.allclose(dropped.norm(dim=1), torch.ones(len(x), dtype=dropped.dtype))
    assert gap.l2m(dropped, SH.drop_dimensions(y, dims[:1])) < gap.l2m(x, y)


def test_projected_gap_is_orthogonal_to_the_database_subspace():
    x, y = embeddings()
    for k in (0, 3, 8):
        g = SH.projected_gap(y, x, k)
        v = SH.principal_directions(x, k)
        assert torch.allclose(v.T @ g, torch.zeros(k, dtype=g.dtype), atol=1e-10)
        assert SH.orthogonality(g, x, k) == pytest.approx(1.0)
    full = SH.projected_gap(y, x, 0)
    assert torch.allclose(full, gap.normalize(y).mean(0) - gap.normalize(x).mean(0))
    with pytest.raises(ValueError, match="k must be"):
        SH.principal_directions(x, 99)


def test_alpha_zero_is_identity_and_full_alpha_meets_the_centroids():
    x, y = embeddings()
    g = SH.projected_gap(y, x, 0)
    assert torch.allclose(SH.translate(x, g, 0.0), x)
    moved = SH.translate(x, g, 1.0)
    assert torch.allclose(moved.mean(0), y.mean(0), atol=1e-10)


def test_translation_orthogonal_to_the_span_leaves_nearest_neighbours_unchanged():
    # database spans the first 6 of 10 dimensions; translate it along dimension 8
    g = torch.Generator().manual_seed(1)
    db = torch.zeros(50, 10, dtype=torch.float64)
    db[:, :6] = torch.randn(50, 6, generator=g, dtype=torch.float64)
    db = gap.normalize(db)
    queries = torch.randn(200, 10, generator=g, dtype=torch.float64)
    t = torch.zeros(10, dtype=torch.float64)
    t[8] = 0.7
    # cosine NN (rows of equal norm stay of equal norm after an orthogonal translation) and Euclidean NN
    assert torch.equal(R.nearest(queries, db), R.nearest(queries, db + t))
    def euclid(q, d):
        return torch.cdist(q, d).argmin(1)
    assert torch.equal(euclid(queries, db), euclid(queries, db + t))
    # a translation inside the span does change them
    t_in = torch.zeros(10, dtype=torch.float64)
    t_in[0] = 0.7
    assert not torch.equal(R.nearest(queries, db), R.nearest(queries, db + t_in))


def test_robustness_is_one_without_noise_and_falls_with_it():
    x, y = embeddings()
    assert R.robustness(y, x, R.gaussian(0.0)) == 1.0
    assert R.robustness(y, x, lambda e: e) == 1.0
    r_small, r_big = R.robustness(y, x, R.gaussian(0.005)), R.robustness(y, x, R.gaussian(0.04))
    assert 0 <= r_big < r_small <= 1
    assert R.robustness(y, x, R.quantize(256)) >= R.robustness(y, x, R.quantize(8))
    with pytest.raises(ValueError, match="bins"):
        R.quantize(1)
    with pytest.raises(ValueError, match="variance"):
        R.gaussian(-1.0)


def test_quantize_maps_to_bin_centres():
    q = R.quantize(4)(torch.tensor([[-1.0, -0.6, 0.1, 0.99]]))
    assert torch.allclose(q, torch.tensor([[-0.75, -0.75, 0.25, 0.75]]))
