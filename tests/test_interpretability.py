import itertools

import numpy as np
import pytest
import torch

from mdsgap import features
from mdsgap.features import interpretability as I


def test_top_m_streaming_matches_topk():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(500, 7, generator=g)
    v, i = I.top_m(a.split(64), m=10)
    tv, ti = a.topk(10, dim=0)
    assert torch.equal(v, tv) and torch.equal(i, ti)


def test_top_m_needs_enough_rows():
    with pytest.raises(ValueError, match="at least m=5"):
        I.top_m([torch.rand(3, 2)], m=5)


def test_set_similarity_matches_plain_loop():
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(40, 6, generator=g)
    idx = torch.randint(0, 40, (5, 3), generator=g)
    e = torch.nn.functional.normalize(emb, dim=-1)
    for j in range(3):
        rows = idx[:, j]
        loop = np.mean([float(e[rows[a]] @ e[rows[b]]) for a, b in itertools.permutations(range(5), 2)])
        assert I.set_similarity(emb, idx)[j] == pytest.approx(loop, abs=1e-6)


def test_coherent_feature_wins_and_random_feature_does_not():
    """Feature 0 fires on one tight cluster of images; feature 1 fires on random images."""
    g = torch.Generator().manual_seed(2)
    n, d = 400, 16
    x = torch.randn(n, d, generator=g)
    x[:40] = torch.randn(1, d, generator=g) * 3 + 0.1 * torch.randn(40, d, generator=g)
    y = torch.randn(n, d, generator=g)
    act_x = torch.zeros(n, 2)
    act_x[:40, 0] = 1.0 + torch.rand(40, generator=g)
    act_x[:, 1] = torch.rand(n, generator=g)
    acts = torch.cat([act_x, torch.zeros(n, 2)])
    emb = torch.cat([x, y])
    v, idx = I.top_m([acts], m=20)
    sims = I.emb_sim(emb, idx)
    wr = I.win_rate(emb, idx, n_image=n, n_random=300)
    assert sims[0] > 0.9 and wr[0] > 0.99
    assert 0.02 < wr[1] < 0.98


def test_win_rate_matches_composition():
    """A top set made only of captions is compared with caption-only random sets, not mixed ones."""
    g = torch.Generator().manual_seed(3)
    n, d = 300, 8
    x = torch.randn(n, d, generator=g) + 5.0   # images in one cone
    y = torch.randn(n, d, generator=g) - 5.0   # captions in another
    emb = torch.cat([x, y])
    idx = (n + torch.randperm(n, generator=g)[:20])[:, None]  # 20 random captions
    wr = I.win_rate(emb, idx, n_image=n, n_random=400)
    assert 0.05 < float(wr[0]) < 0.95  # a random caption set is not special among caption sets


def test_score_features_on_a_feature_set():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(100, 8, generator=g), torch.randn(100, 8, generator=g)
    out = I.score_features(features.raw_features(8), x, y, m=10, n_random=20)
    assert set(out) == {"EmbSim", "WinRate", "image share", "scorable"} and len(out["EmbSim"]) == 16


def test_score_features_measures_in_the_reference_space():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 4, generator=g), torch.randn(60, 4, generator=g)
    fs = features.raw_features(4)
    ref = torch.ones(120, 3)  # every sample identical in the reference space
    out = I.score_features(fs, x, y, m=5, n_random=10, reference=ref)
    assert np.allclose(out["EmbSim"], 1.0) and np.allclose(out["WinRate"], 0.5)
    with pytest.raises(ValueError, match="one row per image and caption"):
        I.score_features(fs, x, y, m=5, reference=ref[:10])


def test_beats_is_the_mann_whitney_auc():
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 30).astype(float)  # many ties
    auc = roc_auc_score(np.r_[np.ones(40), np.zeros(30)], np.r_[a, b])
    assert I.beats(a, b).mean() == pytest.approx(auc)
    assert np.allclose(I.beats(np.array([1.0, 3.0]), np.array([1.0, 2.0])), [0.25, 1.0])


def test_top_samples_orders_by_activation_and_says_when_a_feature_is_silent():
    acts = torch.tensor([[0.1, 0.0], [0.9, 0.0], [0.5, 0.0], [0.0, 0.0]])
    fs = features.FeatureSet("given", 2, lambda e: e)
    assert list(I.top_samples(fs, acts, 0, m=2)) == [1, 2]
    assert I.top_samples(fs, acts, 1) is None


def _score_table(m_values=(3, 4)):
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(40, 4, generator=g), torch.randn(40, 4, generator=g)
    raw = features.raw_features(4)
    tool_seeds = {"raw": {0: raw, 1: raw}, "random SAE": {0: raw}}
    return I.score_table(tool_seeds, x, y, {"CLIP space": None}, list(m_values), n_random=10)


def test_score_table_has_a_row_per_tool_seed_and_m_and_compares_with_the_control():
    scores = _score_table()
    assert len(scores) == 3 * 2 and list(scores.columns[-1:]) == ["vs random SAE"]
    assert set(scores.groupby("tool").seed.nunique()) == {2, 1}
    for n, emb, vs in zip(scores.scorable, scores.EmbSim, scores["vs random SAE"]):
        assert n == len(emb) and np.mean(vs) == pytest.approx(0.5)  # the control's own features: a tie


def test_summarise_scores_gives_the_mean_over_seeds_with_an_interval_around_it():
    scores = _score_table(m_values=(3,))
    summary = I.summarise_scores(scores)
    assert len(summary) == 2 * 3 and set(summary.metric) == {"EmbSim", "WinRate", "vs random SAE"}
    row = summary[(summary.tool == "raw") & (summary.metric == "EmbSim")].iloc[0]
    per_seed = [np.mean(a) for a in scores[scores.tool == "raw"].EmbSim]
    assert row.value == pytest.approx(np.mean(per_seed)) and row.seeds == 2
    assert row.low <= row.value <= row.high
