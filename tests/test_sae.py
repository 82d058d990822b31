import dataclasses

import numpy as np
import pytest
import torch

from mdsgap.features import sae as S
from mdsgap.features.synthetic import gapped_pairs


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


# --- paired training: aligned SAEs (Dhimoïla et al. 2026) and the shared support (SPARC) ---

PAIRED_BASE = dict(n_latents=64, steps=200, batch_size=128, lr=3e-3, seed=0)


@pytest.fixture(scope="module")
def gapped():
    x, y = gapped_pairs()
    plain, _ = S.train_sae(torch.cat([x, y]), S.SAEConfig(activation=S.TopK(8), **PAIRED_BASE), progress=False)
    return x, y, S.paired_metrics(plain, x, y)


def test_alignment_penalty_raises_paired_cosine_and_bimodal_energy(gapped):
    """With its default beta the aligned SAE gives a pair's image and caption closer codes than the plain SAE of
    the same seed and size, and moves code energy onto latents that fire on both modalities."""
    x, y, plain = gapped
    model, curve = S.train_paired_sae(x, y, S.SAEConfig(activation=S.TopK(8), pairing=S.Alignment(), **PAIRED_BASE),
                                      progress=False)
    aligned = S.paired_metrics(model, x, y)
    assert plain["paired cosine"] < 0.7, plain  # the world does split concepts
    assert aligned["paired cosine"] > plain["paired cosine"] + 0.04, (plain, aligned)
    assert aligned["bimodal energy"] > plain["bimodal energy"] + 0.03, (plain, aligned)
    assert aligned["image FVU"] < 0.3 and aligned["text FVU"] < 0.3, aligned
    assert {"recon", "pairing", "cosine"} <= set(curve.columns) and (curve.pairing < 0).all()
    assert torch.allclose(model.W_dec.norm(dim=1), torch.ones(64), atol=1e-5)


def test_isoenergy_balances_latent_energy_across_modalities(gapped):
    x, y, plain = gapped
    model, curve = S.train_paired_sae(x, y, S.SAEConfig(activation=S.TopK(8), pairing=S.IsoEnergy(), **PAIRED_BASE),
                                      progress=False)
    iso = S.paired_metrics(model, x, y)
    assert iso["bimodal share"] > plain["bimodal share"] + 0.1, (plain, iso)
    assert iso["paired cosine"] > plain["paired cosine"], (plain, iso)
    assert (curve.pairing >= 0).all() and curve.pairing.iloc[-1] < curve.pairing.iloc[0]


def test_shared_topk_gives_both_sides_of_a_pair_one_support(gapped):
    x, y, plain = gapped
    fresh = S.SparseAutoencoder(32, S.SAEConfig(activation=S.SharedTopK(8), **PAIRED_BASE))
    with torch.no_grad():
        fresh.b_enc += 100.0  # every pre-activation positive: each side keeps a value at all k shared latents
    z_x, z_y = fresh.encode_pair(x, y)
    assert torch.equal(z_x > 0, z_y > 0) and ((z_x > 0).sum(1) == 8).all()
    assert not torch.equal(fresh.encode(x) > 0, fresh.encode(y) > 0)  # apart, the two sides pick differently

    model, _ = S.train_paired_sae(x, y, S.SAEConfig(activation=S.SharedTopK(8), **PAIRED_BASE), progress=False)
    z_x, z_y = model.encode_pair(x, y)
    top = (model.pre_activations(x) + model.pre_activations(y)).topk(8, dim=1).indices
    support = torch.zeros_like(z_x, dtype=torch.bool).scatter(1, top, True)
    assert not ((z_x > 0) & ~support).any() and not ((z_y > 0) & ~support).any()  # both inside the pair's top k
    shared = S.paired_metrics(model, x, y)
    assert shared["support overlap"] > plain["support overlap"] + 0.3, (plain, shared)
    assert shared["paired cosine"] > plain["paired cosine"], (plain, shared)
    # one modality alone has no partner: encode is the plain TopK of its own pre-activations
    topk = S.SparseAutoencoder(32, S.SAEConfig(activation=S.TopK(8), **PAIRED_BASE))
    topk.load_state_dict(model.state_dict())
    assert torch.equal(model.encode(x), topk.encode(x))


def _train_sae_as_before(x, cfg):
    """train_sae and _loss as they were before paired training existed (frozen copy, the regression reference)."""
    torch.manual_seed(cfg.seed)
    sae = S.SparseAutoencoder(x.shape[1], cfg)
    rng = np.random.default_rng(cfg.seed)
    with torch.no_grad():
        sae.b_pre.copy_(S.geometric_median(x[torch.as_tensor(rng.choice(len(x), min(len(x), 4096), replace=False))]))
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, 10 * (1 - s / cfg.steps)))
    since_fired = torch.zeros(cfg.n_latents)
    for _ in range(cfg.steps):
        xb = x[torch.as_tensor(rng.integers(0, len(x), cfg.batch_size))]
        pre = sae.pre_activations(xb)
        z = sae.activate(pre)
        x_hat = sae.decode(z)
        var = (xb - xb.mean(0)).pow(2).sum()
        loss = (xb - x_hat).pow(2).sum() / var
        if isinstance(cfg.activation, S.ReLU):
            loss = loss + cfg.activation.l1 * z.abs().sum(1).mean()
        dead = since_fired >= cfg.dead_after
        if cfg.aux_k and not isinstance(cfg.activation, S.ReLU) and dead.any():
            k = min(cfg.aux_k, int(dead.sum()))
            vals, idx = torch.relu(pre.masked_fill(~dead, -torch.inf)).topk(k, dim=-1)
            resid_hat = torch.zeros_like(pre).scatter(-1, idx, vals) @ sae.W_dec
            loss = loss + cfg.aux_coef * ((xb - x_hat).detach() - resid_hat).pow(2).sum() / var
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sae.remove_parallel_grad()
        opt.step()
        sched.step()
        sae.normalize_decoder()
        since_fired = torch.where((z > 0).any(0), torch.zeros_like(since_fired), since_fired + len(xb))
    return sae


@pytest.mark.parametrize("act", [S.TopK(k=4), S.BatchTopK(k=4), S.ReLU(l1=1e-3)])
def test_configs_without_pairing_train_exactly_as_before(act):
    x = data(n=500)
    cfg = S.SAEConfig(n_latents=32, activation=act, steps=60, batch_size=64, lr=3e-3, dead_after=500, seed=3)
    assert cfg == S.SAEConfig(n_latents=32, activation=act, steps=60, batch_size=64, lr=3e-3, dead_after=500, seed=3,
                              pairing=None)
    new, _ = S.train_sae(x, cfg, progress=False)
    old = _train_sae_as_before(x, cfg)
    for name, tensor in old.state_dict().items():
        assert torch.equal(new.state_dict()[name], tensor), name


def test_cache_keys_of_configs_without_pairing_are_unchanged(monkeypatch):
    from mdsgap import cache
    from mdsgap.features import sets
    monkeypatch.setattr(cache, "CACHE_VERSION", 1)  # the digest was taken at version 1 (2 changed the world)
    cfg = S.SAEConfig(n_latents=48, activation=S.TopK(4), steps=150, batch_size=128, lr=3e-3, dead_after=2000, seed=3)
    key = sets._key("sae", cfg, {"m": 1}, {"d": 2})
    assert "pairing" not in key["cfg"] and "pairing_type" not in key
    assert cache.entry_path("sae", key).name == "2662476e6d65b7a9716c"  # the digest before the field existed
    aligned = dataclasses.replace(cfg, pairing=S.Alignment(0.2))
    iso = dataclasses.replace(cfg, pairing=S.IsoEnergy(0.2))
    keys = {cache.entry_path("paired_sae", sets._key("paired_sae", c, {"m": 1}, {"d": 2})) for c in (aligned, iso)}
    assert len(keys) == 2 and sets._key("paired_sae", aligned, {}, {})["pairing_type"] == "Alignment"


def test_paired_api_rejects_bad_configs_and_inputs():
    with pytest.raises(ValueError, match="beta must be a non-negative"):
        S.Alignment(beta=-0.1)
    with pytest.raises(ValueError, match="coef must be a non-negative"):
        S.IsoEnergy(coef=-1.0)
    x, y = gapped_pairs(n=64, d=8, n_concepts=6, m=2)
    with pytest.raises(ValueError, match="larger than n_latents"):
        S.train_paired_sae(x, y, S.SAEConfig(n_latents=8, activation=S.SharedTopK(k=16)), progress=False)
    with pytest.raises(ValueError, match="larger than n_latents"):
        S.train_sae(x, S.SAEConfig(n_latents=8, activation=S.TopK(k=9)), progress=False)
    with pytest.raises(ValueError, match="positive integer"):
        S.TopK(k=0)
    with pytest.raises(ValueError, match="Unknown pairing"):
        S.SAEConfig(pairing="align")
    with pytest.warns(UserWarning, match="k >= 3"):
        S.SAEConfig(n_latents=8, activation=S.TopK(k=2), pairing=S.Alignment())
    with pytest.raises(ValueError, match="train_paired_sae"):
        S.train_sae(torch.cat([x, y]), S.SAEConfig(n_latents=16, activation=S.SharedTopK(2)), progress=False)
    with pytest.raises(ValueError, match="train_paired_sae"):
        S.train_sae(torch.cat([x, y]), S.SAEConfig(n_latents=16, activation=S.TopK(4), pairing=S.IsoEnergy()),
                    progress=False)
    with pytest.raises(ValueError, match="matched pairs"):
        S.train_paired_sae(x, y[:10], S.SAEConfig(n_latents=16, activation=S.TopK(4), steps=2), progress=False)


def test_paired_describe_and_pairing_terms():
    cfg = S.SAEConfig(n_latents=8, activation=S.TopK(k=4), pairing=S.Alignment(beta=0.5))
    assert S.describe(cfg) == "TopK(k=4), 8 latents, Alignment(beta=0.5)"
    assert S.is_paired(cfg) and S.is_paired(S.SAEConfig(activation=S.SharedTopK())) and not S.is_paired(S.SAEConfig())
    z = torch.tensor([[3.0, 1.0, 1.0, 0.0], [0.0, 2.0, 0.0, 1.0]])
    other = torch.tensor([[0.0, 1.0, 1.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
    # pair 1: top-1s are latents 0 and 3, the rest agree (cosine 1); pair 2: a zero code counts 0
    assert torch.isclose(S.masked_pair_cosine(z, other), torch.tensor(0.5))
    assert torch.isclose(S.pairing_loss(S.Alignment(beta=0.5), z, other), torch.tensor(-0.25))
    assert S.isoenergy(z, z) == 0 and torch.isclose(S.isoenergy(z[:1], other[:1]), torch.tensor(0.5), atol=1e-5)
    assert S.pairing_loss(None, z, other) == 0
    g = torch.Generator().manual_seed(0)
    a, b = torch.relu(torch.randn(64, 32, generator=g)), torch.relu(torch.randn(64, 32, generator=g))
    keep = torch.ones_like(a)
    keep[torch.arange(64), a.argmax(1)] = 0.0
    keep[torch.arange(64), b.argmax(1)] = 0.0
    slow = torch.nn.functional.cosine_similarity(a * keep, b * keep, dim=1).mean()
    assert torch.isclose(S.masked_pair_cosine(a, b), slow, atol=1e-6)


def test_paired_saes_are_feature_sets_cached_apart_from_plain_ones():
    from mdsgap import features
    x, y = gapped_pairs(n=200, d=8, n_concepts=6, m=2)
    ex = features.ExtractorsConfig(sae_latents=16, sae_k=3, sae_steps=10)
    sets, saes = features.build_sets(x, y, ex, 0, {"model": "m"}, {"data": "d"}, tools=("TopK",) + features.PAIRED_TOOLS,
                                     progress=False)
    assert list(sets) == ["TopK", "Aligned", "IsoEnergy", "SharedTopK", "Bilingual"] and set(saes) == set(sets)
    assert "Alignment(beta=0.1)" in sets["Aligned"].name and saes["SharedTopK"].cfg.activation == S.SharedTopK(3)
    assert not torch.equal(saes["TopK"].W_dec, saes["Aligned"].W_dec)
    again, saes2 = features.build_sets(x, y, ex, 0, {"model": "m"}, {"data": "d"}, tools=("Aligned",), progress=False)
    assert torch.equal(saes2["Aligned"].W_dec, saes["Aligned"].W_dec)  # from the cache
    assert (again["Aligned"].encode(x) >= 0).all() and again["Aligned"].n_features == 16
    with pytest.raises(ValueError, match="SharedTopK"):
        features.build_sets(x, y, ex, 0, {}, {}, tools=("Bogus",))


@pytest.mark.parametrize("act,pairing", [(S.TopK(8), S.Alignment()), (S.BatchTopK(8), S.IsoEnergy()),
                                         (S.ReLU(1e-2), None), (S.SharedTopK(8), S.Alignment(0.5))])
def test_stacked_paired_loss_matches_one_side_at_a_time(act, pairing):
    """The paired loss works on [images; captions] stacked; it equals `_reconstruction_loss` of each side, summed."""
    x, y = gapped_pairs(n=128)
    model = S.SparseAutoencoder(32, S.SAEConfig(n_latents=64, activation=act, pairing=pairing, dead_after=1))
    since_fired = torch.zeros(64)
    since_fired[::3] = 10  # a third of the latents dead, so that AuxK takes part
    loss, recon, pair, z_x, z_y = S._paired_loss(model, torch.cat([x, y]), since_fired)
    pre_x, pre_y = model.pre_activations(x), model.pre_activations(y)
    a_x, a_y = model.activate_pair(pre_x, pre_y)
    expected = (S._reconstruction_loss(model, x, pre_x, a_x, since_fired)
                + S._reconstruction_loss(model, y, pre_y, a_y, since_fired))
    assert torch.equal(z_x, a_x) and torch.equal(z_y, a_y)
    assert torch.allclose(recon, expected, rtol=1e-5) and torch.allclose(loss, expected + S.pairing_loss(pairing, a_x, a_y))


def test_a_shared_support_feature_set_codes_pairs_and_refuses_a_lone_side():
    from mdsgap import features
    x, y = gapped_pairs(n=200, d=8, n_concepts=6, m=2)
    ex = features.ExtractorsConfig(sae_latents=16, sae_k=3, sae_steps=10)
    sets, saes = features.build_sets(x, y, ex, 0, {"model": "m"}, {"data": "d"}, tools=("TopK", "SharedTopK"),
                                     progress=False)
    with pytest.raises(ValueError, match="encode_pairs"):
        features.encode_all(sets["SharedTopK"], x)
    zx, zy = features.encode_pairs(sets["SharedTopK"], x, y)
    support_x, support_y = zx > 0, zy > 0
    assert ((support_x | support_y).sum(1) <= 3).all()          # one support of k latents per pair
    tx, ty = features.encode_pairs(sets["TopK"], x, y)
    assert np.array_equal(tx, features.encode_all(sets["TopK"], x)) and np.array_equal(ty, features.encode_all(sets["TopK"], y))


def test_a_bilingual_dictionary_gives_a_concept_one_latent_across_the_gap(gapped):
    """Each side reconstructs itself through its own decoder from one support per pair: the codes of a pair
    share their support, both sides are reconstructed, and the two decoders differ (the concept's direction
    differs across the gap), where the plain TopK SAE splits concepts into one-sided latents."""
    x, y, plain = gapped
    model, _ = S.train_paired_sae(x, y, S.SAEConfig(activation=S.Bilingual(8), **PAIRED_BASE), progress=False)
    z_x, z_y = model.encode_pair(x, y)
    top = sum(model.pre_activations_pair(x, y)).topk(8, dim=1).indices
    support = torch.zeros_like(z_x, dtype=torch.bool).scatter(1, top, True)
    assert not ((z_x > 0) & ~support).any() and not ((z_y > 0) & ~support).any()
    got = S.paired_metrics(model, x, y)
    assert got["image FVU"] < 0.5 and got["text FVU"] < 0.5, got
    assert got["support overlap"] > plain["support overlap"] + 0.3, (plain, got)
    assert got["bimodal share"] > plain["bimodal share"] + 0.3, (plain, got)
    cos = torch.nn.functional.cosine_similarity(model.W_dec, model.W_dec_txt, dim=1)
    assert cos.mean() < 0.99                                         # two dictionaries, not one
    with pytest.raises(ValueError, match="encode_pair"):
        model.encode(x)
    again = S.SparseAutoencoder(32, model.cfg)
    again.load_state_dict(model.state_dict())                        # the caption side's weights are saved
    assert torch.equal(again.eval().encode_pair(x, y)[1], z_y)
