import pytest
import torch

from mdsgap import sae as S


def data(n=2000, d=16, n_atoms=24, seed=0):
    """Sparse combinations of unit atoms: an SAE should reconstruct them well."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.nn.functional.normalize(torch.randn(n_atoms, d, generator=g), dim=1)
    codes = torch.zeros(n, n_atoms)
    idx = torch.randint(0, n_atoms, (n, 3), generator=g)
    codes.scatter_(1, idx, torch.rand(n, 3, generator=g) + 0.5)
    return codes @ atoms + 0.3


@pytest.mark.parametrize("act", [S.TopK(k=4), S.BatchTopK(k=4), S.ReLU(l1=1e-3)])
def test_variants_train_and_keep_unit_decoder_rows(act):
    x = data()
    cfg = S.SAEConfig(n_latents=48, activation=act, steps=300, batch_size=256, lr=3e-3)
    sae, curve = S.train_sae(x, cfg, progress=False)
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(48), atol=1e-5)
    m = S.metrics(sae, x)
    assert m["FVU"] < 0.3, m
    assert curve.loss.iloc[-1] < curve.loss.iloc[0]


def test_topk_l0_equals_k():
    x = data()
    sae = S.SparseAutoencoder(16, S.SAEConfig(n_latents=32, activation=S.TopK(k=5)))
    z = sae.encode(x + 10.0)  # large inputs so that all top-5 pre-activations are positive
    assert ((z > 0).sum(1) <= 5).all()
    sae2, _ = S.train_sae(x, S.SAEConfig(n_latents=32, activation=S.TopK(k=5), steps=100), progress=False)
    assert S.metrics(sae2, x)["L0"] <= 5


def test_batch_topk_keeps_k_per_sample_on_average_in_training():
    sae = S.SparseAutoencoder(16, S.SAEConfig(n_latents=32, activation=S.BatchTopK(k=3)))
    sae.train()
    z = sae.encode(data(n=64) + 5.0)
    assert (z > 0).sum() == 3 * 64
    assert sae.threshold > 0


def test_parallel_gradient_removal():
    sae = S.SparseAutoencoder(8, S.SAEConfig(n_latents=4))
    sae.W_dec.grad = sae.W_dec.data * 3.0 + torch.randn(4, 8)
    sae.remove_parallel_grad()
    assert torch.allclose((sae.W_dec.grad * sae.W_dec.data).sum(1), torch.zeros(4), atol=1e-5)


def test_geometric_median_resists_outliers():
    x = torch.cat([torch.zeros(50, 2), torch.full((5, 2), 100.0)])
    assert S.geometric_median(x).norm() < 1.0 < x.mean(0).norm()


def test_auxk_gives_dead_latents_a_gradient():
    """Dead latents get encoder gradient from the AuxK term only; live-only training leaves them untouched."""
    x = data(n=256) + 1.0
    since_fired = torch.zeros(32)
    since_fired[16:] = 10**9  # latents 16.. are dead
    for aux_k, expect in ((8, True), (0, False)):
        sae = S.SparseAutoencoder(16, S.SAEConfig(n_latents=32, activation=S.TopK(k=2), aux_k=aux_k))
        with torch.no_grad():  # make the live latents win every top-k, so dead ones never fire
            sae.b_enc[:16] += 100.0
        loss, z = S._loss(sae, x, since_fired)
        assert (z[:, 16:] == 0).all()
        loss.backward()
        assert (sae.W_enc.grad[:, 16:].abs().sum() > 0) == expect


def test_metrics_by_modality_and_describe():
    x = data(n=200)
    sae = S.SparseAutoencoder(16, S.SAEConfig(n_latents=8, activation=S.TopK(k=2)))
    table = S.metrics_by_modality(sae, x[:100], x[100:])
    assert list(table.index) == ["image", "text", "both"] and {"L0", "FVU", "dead fraction"} <= set(table.columns)
    assert S.describe(S.SAEConfig(n_latents=8, activation=S.TopK(k=2))) == "TopK(k=2), 8 latents"
