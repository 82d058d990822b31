import numpy as np
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
    x0, y0, none = SH.liang_shift(x, y, 0.0)
    assert torch.allclose(x0, x) and torch.allclose(y0, y) and none == {}
    x1, y1, moved = SH.liang_shift(x, y, gap.l2m(x, y), {"prompts": y[:5]})
    assert gap.l2m(x1, y1) < 0.5 * gap.l2m(x, y)
    assert torch.allclose(moved["prompts"], y1[:5], atol=1e-6)  # prompts move as the captions do
    x2, _, _ = SH.liang_shift(x, y, -0.5)
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


def _zero_shot_task(n=400, d=16, seed=0):
    """Images near one of three class directions per factor, and those class embeddings: a zero-shot task
    every image gets right."""
    g = torch.Generator().manual_seed(seed)
    classes = {f: torch.nn.functional.normalize(torch.randn(3, d, generator=g), dim=1) for f in ("a", "b")}
    label = torch.randint(0, 3, (n,), generator=g)
    x = classes["a"][label] + classes["b"][label] + 0.05 * torch.randn(n, d, generator=g)
    return x, classes


def test_zero_shot_agreement_is_one_unperturbed_and_falls_with_noise():
    x, classes = _zero_shot_task()
    assert R.zero_shot_agreement(x, classes, lambda e: e) == 1.0
    row = R.perturbation_table(x, classes, variances=[0.0, 4.0], bins=[256, 2], n_noise=2)
    assert list(row) == ["noise 0.0", "noise 4.0", "256 bins", "2 bins"]
    assert row["noise 0.0"] == 1.0 and row["256 bins"] > 0.95
    assert row["noise 4.0"] < 0.9 and row["2 bins"] == R.zero_shot_agreement(x, classes, R.quantize(2))
    assert row["noise 4.0"] == pytest.approx(np.mean([R.zero_shot_agreement(x, classes, R.gaussian(4.0, seed=s))
                                                     for s in range(2)]))


def test_paraphrase_agreement_compares_every_pair_of_templates():
    x, classes = _zero_shot_task()
    same = {"t1": classes, "t2": classes, "t3": classes}
    assert R.paraphrase_agreement(x, same) == 1.0
    flipped = {f: e.flip(0) for f, e in classes.items()}  # a template that swaps the first and last value
    got = R.paraphrase_agreement(x, {"t1": classes, "t2": classes, "t3": flipped})
    one_pair = R.zero_shot_agreement(x, classes, lambda e: e.flip(0))
    assert got == pytest.approx((1 + 2 * one_pair) / 3) and one_pair < 0.8
