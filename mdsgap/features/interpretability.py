"""Automatic interpretability scores of features: EmbSim and WinRate on each feature's top-m samples.

Yan et al. (2026) name both metrics but publish neither formula; the book uses these readings:

- the **top-m set** of a feature is the m samples, images and captions pooled, on which it fires most;
- **EmbSim** is the mean cosine similarity between the CLIP embeddings of the top-m set (pairs of
  distinct members): a feature whose top samples look alike in the model's own space scores high;
- **WinRate** is the share of random sets that the feature's top-m set beats on EmbSim, where each random
  set has the same number of images and captions as the top-m set. Matching the composition matters:
  within-modality cosines are high (the cone effect) and cross-modal ones low (the gap), so without it
  any feature that fires on one modality would look coherent.

Measured in the model's own embedding space, both scores are partly circular: the top samples of *any*
direction, even a random one, lie close together there. The similarities can therefore be measured in a
reference space that the features were not built from; on the world, the ground-truth factor space
(`groundtruth.factor_embedding`).

Top-m sets are found in one streaming pass over activation batches, so memory is O(m * features).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F


def top_m(batches: Iterable[torch.Tensor], m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices), each (m, F): the m largest activations of every feature over all batches.

    Indices count rows across the batches in order. Ties keep the earlier row.
    """
    best_v = best_i = None
    offset = 0
    for a in batches:
        idx = torch.arange(offset, offset + len(a))[:, None].expand_as(a)
        offset += len(a)
        v = a if best_v is None else torch.cat([best_v, a])
        i = idx if best_i is None else torch.cat([best_i, idx])
        k = min(m, len(v))
        top_v, pos = v.topk(k, dim=0, sorted=True)
        best_v, best_i = top_v, torch.gather(i, 0, pos)
    if best_v is None or offset < m:
        raise ValueError(f"top_m needs at least m={m} rows, got {offset}.")
    return best_v, best_i


def set_similarity(emb: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Mean pairwise cosine among the rows idx[:, j] of emb, for every column j: (m, S) -> (S,)."""
    e = F.normalize(emb.float(), dim=-1)[idx.T]  # (S, m, d)
    m = e.shape[1]
    s = e.sum(1)
    return ((s * s).sum(1) - m) / (m * (m - 1))


def emb_sim(emb: torch.Tensor, top_idx: torch.Tensor) -> torch.Tensor:
    """EmbSim of each feature: mean pairwise cosine of the embeddings of its top-m set."""
    return set_similarity(emb, top_idx)


def win_rate(emb: torch.Tensor, top_idx: torch.Tensor, n_image: int, n_random: int = 200, seed: int = 0) -> torch.Tensor:
    """WinRate of each feature: share of composition-matched random sets with lower EmbSim (ties count half).

    Rows [0, n_image) of emb are images, the rest captions; a random set for a feature draws as many of each
    as its top-m set holds. Features whose top sets have the same composition share one batch of random sets
    (there are at most m + 1 compositions), which keeps the cost independent of the number of features.
    """
    g = torch.Generator().manual_seed(seed)
    m, n_feat = top_idx.shape
    n_text = len(emb) - n_image
    sims = emb_sim(emb, top_idx)
    k_img = (top_idx < n_image).sum(0)
    out = torch.empty(n_feat)
    for k in torch.unique(k_img).tolist():
        imgs = torch.randint(0, n_image, (k, n_random), generator=g)
        txts = n_image + torch.randint(0, n_text, (m - k, n_random), generator=g)
        base = set_similarity(emb, torch.cat([imgs, txts]))  # (n_random,)
        cols = k_img == k
        s = sims[cols][:, None]
        out[cols] = ((base < s).float() + 0.5 * (base == s).float()).mean(1)
    return out


def score_features(fs, x: torch.Tensor, y: torch.Tensor, m: int = 20, n_random: int = 200, seed: int = 0,
                   reference: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """EmbSim, WinRate and the image share of the top-m set, per feature of a FeatureSet on paired embeddings.

    Top-m sets are found from the features of x and y; similarities are measured in `reference`, rows
    aligned with torch.cat([x, y]) (default: those embeddings themselves).
    """
    emb = torch.cat([x, y])
    values, idx = top_m(fs.batches(emb), m)
    alive = (values > 0).all(0)  # a top set padded with silent samples says nothing about the feature
    ref = emb if reference is None else reference
    if len(ref) != len(emb):
        raise ValueError(f"reference needs one row per image and caption ({len(emb)}), got {len(ref)}.")
    return {"EmbSim": emb_sim(ref, idx).numpy(), "WinRate": win_rate(ref, idx, len(x), n_random, seed).numpy(),
            "image share": (idx < len(x)).float().mean(0).numpy(), "scorable": alive.numpy()}


def beats(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For every score in a: the share of scores in b it exceeds (ties count half).

    The mean over a is the probability that a random member of a beats a random member of b (the
    Mann-Whitney AUC); with b the scores of an untrained dictionary, it is a WinRate against a control.
    """
    b = np.sort(np.asarray(b, dtype=np.float64))
    a = np.asarray(a, dtype=np.float64)
    below = np.searchsorted(b, a, side="left")
    not_above = np.searchsorted(b, a, side="right")
    return (below + 0.5 * (not_above - below)) / len(b)


def top_samples(fs, e: torch.Tensor, d: int, m: int = 6) -> np.ndarray | None:
    """Indices of the m rows of e on which feature d of the FeatureSet fs fires most (None if it never fires)."""
    a = np.concatenate([b[:, d].numpy() for b in fs.batches(e)])
    return np.argsort(-a)[:m] if a.max() > 0 else None


def score_table(tool_seeds: dict, x: torch.Tensor, y: torch.Tensor, spaces: dict, m_values,
                n_random: int = 200, control: str = "random SAE"):
    """EmbSim and WinRate (arrays over scorable features) per (space, tool, seed, m), and "vs <control>":
    how often each row's EmbSims beat the control tool's at the same space and m (`beats`).

    tool_seeds maps tool -> {seed: FeatureSet}; spaces maps a name to a `reference` of `score_features`."""
    import pandas as pd

    rows = []
    for space, ref in spaces.items():
        for tool, by_seed in tool_seeds.items():
            for s, fs in by_seed.items():
                for m in m_values:
                    sc = score_features(fs, x, y, m=m, n_random=n_random, seed=s, reference=ref)
                    ok = sc["scorable"]
                    rows.append({"space": space, "tool": tool, "seed": s, "m": m, "EmbSim": sc["EmbSim"][ok],
                                 "WinRate": sc["WinRate"][ok], "scorable": int(ok.sum())})
    scores = pd.DataFrame(rows)
    base = scores[scores.tool == control].set_index(["space", "m"])["EmbSim"]
    scores[f"vs {control}"] = [beats(r.EmbSim, base.loc[(r.space, r.m)]) for r in scores.itertuples()]
    return scores


def summarise_scores(scores, metrics=("EmbSim", "WinRate", "vs random SAE")):
    """Mean and 95% interval over seeds (`stats.seed_interval`: the seeds' means) of each metric of
    a `score_table`, per (space, tool, m); one row per metric."""
    import pandas as pd

    from mdsgap import stats

    summary = []
    for (space, tool, m), g in scores.groupby(["space", "tool", "m"], sort=False):
        for metric in metrics:
            mean, lo, hi = stats.seed_interval(list(g[metric]))
            summary.append({"space": space, "tool": tool, "m": m, "metric": metric, "value": mean, "low": lo,
                            "high": hi, "seeds": len(g), "features": int(g["scorable"].mean())})
    return pd.DataFrame(summary)
