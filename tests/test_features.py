import pytest
import torch

from mdsgap import features
from mdsgap.features import ncl, sae


def pairs(n=300, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g)
    return z + 1.0, z - 1.0


def test_raw_features_are_non_negative_halves():
    fs = features.raw_features(3)
    e = torch.tensor([[3.0, -4.0, 0.0]])
    assert torch.allclose(fs.encode(e), torch.tensor([[0.6, 0.0, 0.0, 0.0, 0.8, 0.0]]))
    assert fs.n_features == 6


def test_batches_stream_and_do_not_leak_no_grad():
    fs = features.raw_features(8)
    x, _ = pairs()
    gen = fs.batches(x, batch_size=70)
    first = next(gen)
    assert torch.is_grad_enabled() and first.shape == (70, 16)
    assert torch.equal(torch.cat([first, *gen]), fs.encode(x))


def test_trained_extractors_are_cached_by_config():
    x, y = pairs()
    ident = {"model": "m"}, {"data": "d"}
    cfg = sae.SAEConfig(n_latents=16, activation=sae.TopK(2), steps=20, batch_size=64)
    fs1, m1 = features.sae_features(x, y, cfg, *ident, progress=False)
    fs2, m2 = features.sae_features(x, y, cfg, *ident, progress=False)
    assert torch.equal(m1.W_dec, m2.W_dec) and fs1.n_features == 16
    fs3, m3 = features.sae_features(x, y, sae.SAEConfig(n_latents=16, activation=sae.BatchTopK(2), steps=20,
                                                        batch_size=64), *ident, progress=False)
    assert "BatchTopK" in fs3.name
    nfs, head = features.ncl_features(x, y, ncl.NCLConfig(n_features=12, steps=10, batch_size=64), *ident, progress=False)
    assert (nfs.encode(x) >= 0).all() and nfs.n_features == 12


def test_build_sets_names_every_tool_and_rejects_unknown_ones():
    x, y = pairs()
    ex = features.ExtractorsConfig(sae_latents=8, sae_k=2, sae_steps=5, ncl_features=6, ncl_steps=3)
    sets, saes = features.build_sets(x, y, ex, 0, {"model": "m"}, {"data": "d"}, progress=False)
    assert list(sets) == list(features.TOOLS) and set(saes) == {"TopK", "BatchTopK", "ReLU"}
    assert sets["NCL"].n_features == 6 and sets["raw"].n_features == 16
    with pytest.raises(ValueError, match="Available"):
        features.build_sets(x, y, ex, 0, {}, {}, tools=("PCA",))
    with pytest.raises(TypeError, match="sae_k"):
        features.ExtractorsConfig(sae_k=2.5)


def test_an_sae_config_by_name_plain_or_paired():
    from mdsgap import features
    from mdsgap.attribution import comparison
    from mdsgap.features import sae
    ex = features.ExtractorsConfig(sae_latents=16, sae_k=3)
    assert ex.config("TopK", 1) == ex.sae_configs(1)["TopK"]
    assert ex.config(comparison.CHOSEN[0], 2).seed == 2  # the application chapters' dictionary
    paired = ex.config("Aligned", 2)
    assert sae.is_paired(paired) and paired.seed == 2 and not sae.is_paired(ex.config("TopK", 2))
    with pytest.raises(ValueError, match="not an SAE tool"):
        ex.config("NCL", 0)
