import numpy as np
import pandas as pd
import pytest
import torch

from mdsgap import attribution as A
from mdsgap.attribution import dominance as D


def test_energy_score_of_one_sided_and_balanced_latents():
    # latent 0 fires only on images, latent 1 only on captions, latent 2 alike on both, latent 3 never
    ax = torch.tensor([[2.0, 0.0, 1.0, 0.0], [1.0, 0.0, 3.0, 0.0]])
    ay = torch.tensor([[0.0, 1.0, 1.0, 0.0], [0.0, 2.0, 3.0, 0.0]])
    mu = D.mds(ax, ay, "energy")
    assert mu[:3].tolist() == [1.0, 0.0, 0.5] and np.isnan(mu[3])
    assert A.energy_classes(mu).tolist() == [D.IMGD, D.TXTD, D.CMD, D.DEAD]


def test_bimodal_rule_and_energy_classes_at_the_edges():
    mu = np.array([0.0, 0.04, 0.05, 0.5, 0.95, 0.96, 1.0, np.nan])
    assert A.bimodal(mu).tolist() == [False, False, True, True, True, False, False, False]
    assert A.energy_classes(mu).tolist() == [D.TXTD, D.TXTD, D.CMD, D.CMD, D.CMD, D.IMGD, D.IMGD, D.DEAD]
    assert A.energy_classes(mu, low=0.2, high=0.6)[3] == D.CMD


def test_streaming_energy_equals_the_formula_and_has_bootstrap_replicates():
    g = torch.Generator().manual_seed(0)
    ax = torch.relu(torch.randn(600, 8, generator=g))
    ay = torch.relu(torch.randn(600, 8, generator=g) - 0.5)
    stats = D.dominance_stats(zip(ax.split(100), ay.split(100)), 8, n_boot=30, seed=0)
    ex, ey = (ax.double() ** 2).mean(0).numpy(), (ay.double() ** 2).mean(0).numpy()
    assert np.allclose(stats.scores("energy"), ex / (ex + ey))
    assert np.allclose(stats.mean_squares(), (ex, ey))
    boot = stats.boot_scores("energy")
    assert boot.shape == (30, 8) and np.isfinite(boot).all() and (boot.std(0) > 0).all()
    assert np.allclose(boot.mean(0), ex / (ex + ey), atol=0.03)


def test_bridge_of_a_concept_split_across_the_gap():
    # latent 0 image-only and latent 1 caption-only fire on the same pairs, with identical decoder atoms
    rng = np.random.default_rng(0)
    fires = rng.random(200) < 0.5
    zx, zy = np.zeros((200, 2)), np.zeros((200, 2))
    zx[:, 0] = fires * (1 + rng.random(200))
    zy[:, 1] = fires * (1 + rng.random(200))
    b = A.bridge(A.cross_covariance([(zx, zy)], 2), np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    assert b[0, 1] > 0 and b[0, 0] == b[1, 0] == b[1, 1] == 0
    assert A.bridge_modality_score(b).tolist() == [1.0, 0.0]


def planted_pair(n, rng, shown_p=0.6, named_given_shown=0.8):
    """Image latent 0 fires when a concept is shown, caption latent 1 when it is also named."""
    shown = rng.random(n) < shown_p
    named = shown & (rng.random(n) < named_given_shown)
    zx, zy = np.zeros((n, 2)), np.zeros((n, 2))
    zx[:, 0] = shown * (0.5 + rng.random(n))
    zy[:, 1] = named * (0.5 + rng.random(n))
    return zx, zy


def test_shuffled_pairs_drive_the_cross_covariance_to_zero():
    rng = np.random.default_rng(1)
    zx, zy = planted_pair(5000, rng)
    paired = A.cross_covariance([(zx, zy)], 2)
    shuffled = A.cross_covariance([(zx, zy[rng.permutation(5000)])], 2)
    assert paired[0, 1] > 0.1
    assert np.abs(shuffled).max() < 0.05 * paired[0, 1]


def test_streaming_cross_covariance_equals_the_batch_formula():
    g = torch.Generator().manual_seed(2)
    zx = torch.randn(300, 5, generator=g) + 10.0  # a large mean: the streaming sums must stay exact
    zy = 0.5 * zx[:, [1, 0, 4, 2, 3]] + torch.randn(300, 5, generator=g)
    x, y = zx.double().numpy(), zy.double().numpy()
    batch = (x - x.mean(0)).T @ (y - y.mean(0)) / len(x)
    assert np.allclose(A.cross_covariance(zip(zx.split(64), zy.split(64)), 5), batch)
    corr = A.cross_covariance(zip(zx.split(64), zy.split(64)), 5, correlation=True)
    assert np.allclose(corr, np.corrcoef(x.T, y.T)[:5, 5:])


def planted_concepts(n=4000, seed=3):
    """Concepts (0, 3) and (1, 4) split across the gap, lone image latent 2, lone caption latent 5, cross-modal 6."""
    rng = np.random.default_rng(seed)
    zx, zy = np.zeros((n, 7)), np.zeros((n, 7))
    for i, j, q in ((0, 3, 0.5), (1, 4, 0.4)):
        a, b = planted_pair(n, rng, q)
        zx[:, i], zy[:, j] = a[:, 0], b[:, 1]
    zx[:, 2] = (rng.random(n) < 0.3) * (0.5 + rng.random(n))
    zy[:, 5] = (rng.random(n) < 0.3) * (0.5 + rng.random(n))
    both = rng.random(n) < 0.5
    zx[:, 6], zy[:, 6] = both * (0.5 + rng.random(n)), both * (0.5 + rng.random(n))
    atoms = np.eye(5)[[0, 1, 2, 0, 1, 3, 4]] + 0.05 * rng.standard_normal((7, 5))
    return zx, zy, atoms


@pytest.mark.parametrize("method", A.METHODS)
def test_pair_latents_recovers_planted_pairs_and_leaves_lone_latents_alone(method):
    zx, zy, atoms = planted_concepts()
    table = A.pair_latents(zx, zy, method=method, decoder=atoms, floor=0.1)
    got = {(i, j): kind for i, j, kind in table[["image_latent", "text_latent", "kind"]].itertuples(index=False)}
    assert got == {(0, 3): "pair", (1, 4): "pair", (2, -1): "image", (-1, 5): "text", (6, 6): "cross-modal"}
    assert table.concept.tolist() == list(range(5))
    assert (table.score[table.kind == "pair"] > 0.1).all() and table.score[table.kind != "pair"].isna().all()


def test_a_pair_must_be_mutual_best():
    # image latents 0 and 1 both follow the concept named by caption latent 2; 1 is noisier, so 2 picks 0
    rng = np.random.default_rng(7)
    zx, zy = planted_pair(3000, rng)
    noisy = zx[:, 0] * (rng.random(3000) < 0.6) + (rng.random(3000) < 0.2)
    zx, zy = np.c_[zx[:, 0], noisy, np.zeros(3000)], np.c_[np.zeros((3000, 2)), zy[:, 1]]
    table = A.pair_latents(zx, zy, floor=0.1)
    assert table[["image_latent", "text_latent", "kind"]].values.tolist() == [[0, 2, "pair"], [1, -1, "image"]]


def detector_codes(n, q, p, caption_size, rng):
    """Concept 0: image latent 0 when shown (q), caption latent 1 when named (p), the latter caption_size as large;
    concept 1: cross-modal latent 2 shown with probability 0.3 and named with probability 0.6."""
    shown = rng.random(n) < q
    named = shown & (rng.random(n) < p / q)
    zx, zy = np.zeros((n, 3)), np.zeros((n, 3))
    zx[:, 0] = shown * (0.5 + rng.random(n))
    zy[:, 1] = named * caption_size * (0.5 + rng.random(n))
    zx[:, 2] = (rng.random(n) < 0.3) * (0.5 + rng.random(n))
    zy[:, 2] = (rng.random(n) < 0.6) * (0.5 + rng.random(n))
    return zx, zy


CONCEPTS = pd.DataFrame({"concept": [0, 1], "image_latent": [0, 2], "text_latent": [1, 2]})


@pytest.mark.parametrize("weighting", A.WEIGHTINGS)
def test_concept_scores_of_clean_detectors_match_the_ideal_share(weighting):
    zx, zy = detector_codes(20000, 0.8, 0.4, 1.0, np.random.default_rng(4))
    got = A.concept_scores(zx, zy, CONCEPTS, weighting)
    assert got == pytest.approx(A.ideal_share([0.8, 0.3], [0.4, 0.6]), abs=0.02)


def test_a_weaker_caption_side_biases_energy_but_not_normalised_energy_or_frequency():
    zx, zy = detector_codes(20000, 0.8, 0.4, 1 / 3, np.random.default_rng(5))
    ideal = A.ideal_share(0.8, 0.4)
    assert A.concept_scores(zx, zy, CONCEPTS, "energy")[0] > ideal + 0.2  # q a^2 / (q a^2 + p a^2 / 9) ~ 0.95
    for weighting in ("normalised energy", "frequency"):
        assert A.concept_scores(zx, zy, CONCEPTS, weighting)[0] == pytest.approx(ideal, abs=0.02)


def test_ideal_shares():
    assert np.isnan(A.ideal_share(0.0, 0.0)) and A.ideal_share(1.0, 0.5) == pytest.approx(2 / 3)
    p = np.linspace(0, 1, 5)
    assert np.allclose(A.ideal_ratio_mds(1.0, p), 1 - p / 2)
    assert np.isnan(A.ideal_ratio_mds(0.0, 0.0)) and A.ideal_ratio_mds(0.0, 0.7) == 0.0


def test_ideal_ratio_mds_matches_a_simulated_detector():
    rng = np.random.default_rng(6)
    n, q, p = 20000, 0.7, 0.4  # one cross-modal latent, same size on both sides, shown and named independently
    ax = torch.tensor((rng.random((n, 1)) < q) * 1.0)
    ay = torch.tensor((rng.random((n, 1)) < p) * 1.0)
    assert D.mds(ax, ay)[0] == pytest.approx(A.ideal_ratio_mds(q, p), abs=0.01)


def reference_example():
    """50 pairs x 6 latents and a 6 x 4 decoder; RandomState's stream is frozen across numpy versions."""
    rs = np.random.RandomState(0)
    n = 50
    shown = rs.rand(n, 3) < np.array([0.6, 0.5, 0.4])       # three hidden concepts, shown in the image
    named = shown[:, 0] & (rs.rand(n) < 0.7)                # concept 0 named in the caption 70% of the time
    zx, zy = np.zeros((n, 6)), np.zeros((n, 6))
    zx[:, 0] = shown[:, 0] * (1 + rs.rand(n))               # image side of concept 0
    zy[:, 1] = named * (0.5 + rs.rand(n))                   # caption side of concept 0
    zx[:, 2] = shown[:, 1] * (1 + rs.rand(n))               # concept 1 fires on both sides
    zy[:, 2] = shown[:, 1] * (1 + rs.rand(n))
    zx[:, 3] = shown[:, 2] * (1 + rs.rand(n))               # concept 2: strong on images, weak on captions
    zy[:, 3] = shown[:, 2] * 0.2 * rs.rand(n)
    zy[:, 4] = (rs.rand(n) < 0.3) * rs.rand(n)              # caption-only noise latent
    zx[:, 5] = ~shown[:, 0] * (1.5 + 1.5 * rs.rand(n))      # image latent anti-correlated with concept 0
    zy[:, 5] = (rs.rand(n) < 0.1) * rs.rand(n)
    dec = rs.randn(6, 4)
    dec[1] = 1.1 * dec[0]                                   # the two halves of concept 0 point the same way
    dec[5] = -1.2 * dec[0] + 0.1 * rs.randn(4)              # ... and latent 5 points against them
    return zx.astype(np.float32), zy.astype(np.float32), dec.astype(np.float32)


def test_reproduces_the_reference_implementation():
    # Expected numbers were produced by the reference functions of github.com/Parabrele/IsoEnergy at commit
    # 4bb38ae60e078f7b6f8e77259d80317be57f2467 (src/utils.py: measure_everything(return_sqr=True) for mu and E,
    # measure_bridge(center=True, normalize=True, weight_type="cov") with the per-modality means of
    # measure_everything(return_sqr=False) as centres, get_bridge_norms for mu_B and E_B, and E_B / (E + 1e-8) as in
    # _intervene(use_E_B=True)), run in float32 on reference_example() with an identity SAE (codes in, codes out),
    # in batches of 20, 20 and 10 pairs. measure_bridge gave the same B with normalize=False: its normalisation
    # line indexes a copy, so what it computes, and what we test, is the unnormalised covariance bridge.
    zx, zy, dec = reference_example()
    batches = [(zx[s:s + 20], zy[s:s + 20]) for s in range(0, 50, 20)]
    stats = D.dominance_stats(((torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches), 6)
    mu = [1.0, 0.0, 0.46017319, 0.99485320, 0.0, 0.97569942]
    assert stats.scores("energy") == pytest.approx(mu, rel=1e-5)

    b = A.bridge(A.cross_covariance(batches, 6), dec, sparsify=True)
    expected = np.zeros((6, 6))
    expected[0, 1], expected[2, 2], expected[5, 1] = 1.43500674, 3.02997899, 2.54537535  # W[5, 1] < 0 survives
    assert b == pytest.approx(expected, rel=1e-5)

    mu_b = A.bridge_modality_score(b)  # the reference reports 0 where nothing bridges (latents 3 and 4); we say NaN
    assert mu_b[[0, 1, 2, 5]].tolist() == [1.0, 0.0, 0.5, 1.0] and np.isnan(mu_b[[3, 4]]).all()
    e_b = [0.71750337, 1.99019098, 3.02997899, 0.0, 0.0, 1.27268767]
    assert A.bridge_energy(b) == pytest.approx(e_b, rel=1e-5)
    share = [0.98317397, 5.82998562, 2.66979909, 0.0, 0.0, 1.28562617]
    assert A.cross_modal_share(b, *stats.mean_squares()) == pytest.approx(share, rel=1e-5)


def test_bad_input_names_the_problem():
    z = np.zeros((4, 3))
    with pytest.raises(ValueError, match="same"):
        A.cross_covariance([(z, np.zeros((4, 2)))], 3)
    with pytest.raises(ValueError, match=r"CrossCovariance\(3\)"):
        A.CrossCovariance(5).update(z, z)
    with pytest.raises(ValueError, match="No pairs"):
        A.CrossCovariance(3).matrix()
    with pytest.raises(ValueError, match="transpose"):
        A.bridge(np.zeros((3, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="square"):
        A.bridge_modality_score(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="low <= high"):
        A.bimodal([0.5], low=0.9, high=0.1)
    with pytest.raises(ValueError, match="Available"):
        A.pair_latents(z, z, method="cosine")
    with pytest.raises(ValueError, match="decoder"):
        A.pair_latents(z, z, method="bridge")
    with pytest.raises(ValueError, match="one class label per latent"):
        A.pair_latents(z, z, classes=[D.IMGD])
    with pytest.raises(ValueError, match="Available"):
        A.concept_scores(z, z, CONCEPTS, "mass")
    with pytest.raises(ValueError, match="pair_latents"):
        A.concept_scores(z[:, :2], z[:, :2], CONCEPTS)
    with pytest.raises(ValueError, match="No pairs"):
        D.DominanceStats(3).mean_squares()
