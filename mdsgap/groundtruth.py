"""Checking MDS classes against the world's ground truth.

In the world every factor's modality is known, so every feature that encodes a factor has an expected
class: a shared factor (visible and named) should give a cross-modal feature (CMD), a vision-only factor
a vision-dominant one (ImgD), a language-only factor a language-dominant one (TxtD).

A feature is assigned the factor value it separates best: the largest AUROC of its activation for
"this sample has value v", over every value of every factor, read on the side where the factor can be
seen (images for vision-only factors, captions for language-only ones, both for shared ones, taking
the better side). Features whose best AUROC is below a floor encode no factor and are left out.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from mdsgap import dominance, world

EXPECTED = {"shared": dominance.CMD, "vision": dominance.IMGD, "language": dominance.TXTD}


def auroc_matrix(acts: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AUROC of every feature (columns of acts, (n, F)) for every binary target (columns of positive, (n, T)).

    Rank-based (Mann-Whitney) with average ranks for ties, which matter here: most activations are 0.
    Returns (F, T); NaN where a target has no positives or no negatives.
    """
    ranks = rankdata(acts, axis=0, method="average")  # (n, F)
    pos = positive.astype(np.float64)
    n_pos = pos.sum(0)
    n_neg = len(pos) - n_pos
    rank_sum = ranks.T @ pos  # (F, T)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    auc[:, (n_pos == 0) | (n_neg == 0)] = np.nan
    return auc


def _targets(factors: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str, str]]]:
    cols, names = [], []
    for f in world.FACTORS:
        for v in f.values:
            cols.append((factors[f.name].astype(str) == v).to_numpy())
            names.append((f.name, v))
    return np.stack(cols, 1), names


def assign_factors(acts_x: np.ndarray, acts_y: np.ndarray, factors: pd.DataFrame, floor: float = 0.75) -> pd.DataFrame:
    """For every feature: the factor value it encodes best, the side it was read on, its AUROC and the
    expected MDS class (None when the best AUROC is below `floor`)."""
    targets, names = _targets(factors)
    by_side = {"image": auroc_matrix(acts_x, targets), "text": auroc_matrix(acts_y, targets)}
    modality = np.array([world.FACTOR_BY_NAME[f].modality for f, _ in names])
    # a factor can only be read where it exists
    by_side["image"][:, modality == "language"] = np.nan
    by_side["text"][:, modality == "vision"] = np.nan
    img = np.nan_to_num(by_side["image"], nan=-np.inf)
    txt = np.nan_to_num(by_side["text"], nan=-np.inf)
    combined = np.maximum(img, txt)  # (F, T): the better side of each target
    best_t = combined.argmax(1)
    best_auc = combined[np.arange(len(combined)), best_t]
    side = (txt[np.arange(len(txt)), best_t] > img[np.arange(len(img)), best_t]).astype(int)
    rows = []
    for d in range(acts_x.shape[1]):
        f, v = names[best_t[d]]
        ok = best_auc[d] >= floor
        rows.append({"feature": d, "factor": f, "value": v, "side": ("image", "text")[side[d]],
                     "AUROC": float(best_auc[d]) if np.isfinite(best_auc[d]) else np.nan,
                     "modality": world.FACTOR_BY_NAME[f].modality,
                     "expected": EXPECTED[world.FACTOR_BY_NAME[f].modality] if ok else None})
    return pd.DataFrame(rows).set_index("feature")


def confusion(predicted: np.ndarray, expected: np.ndarray) -> pd.DataFrame:
    """Counts of MDS class (columns) against expected class (rows), over features with both."""
    keep = pd.notna(expected) & np.isin(predicted, dominance.CLASSES)
    return pd.crosstab(pd.Series(expected[keep], name="expected"), pd.Series(predicted[keep], name="MDS class")) \
        .reindex(index=list(dominance.CLASSES), columns=list(dominance.CLASSES), fill_value=0)


def accuracy(predicted: np.ndarray, expected: np.ndarray) -> float:
    """Share of features, among those with an expected class and an MDS class, where the two agree."""
    keep = pd.notna(expected) & np.isin(predicted, dominance.CLASSES)
    return float((predicted[keep] == expected[keep]).mean()) if keep.any() else float("nan")


def random_partition_accuracy(predicted: np.ndarray, expected: np.ndarray, n_perm: int = 1000,
                              seed: int = 0) -> np.ndarray:
    """Control: accuracies of random relabellings with the same class sizes as `predicted`."""
    keep = pd.notna(expected) & np.isin(predicted, dominance.CLASSES)
    p, e = predicted[keep], expected[keep]
    rng = np.random.default_rng(seed)
    return np.array([(rng.permutation(p) == e).mean() for _ in range(n_perm)])
