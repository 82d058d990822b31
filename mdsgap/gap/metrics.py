"""Modality-gap metrics on plain embedding tensors, so they apply to any CLIP's embeddings.

Conventions (see the book's glossary): `x` holds image embeddings and `y` text embeddings, row i of
each forming a matched pair. Every metric L2-normalises its inputs first, as in Liang et al. (2022,
arXiv:2203.02053) and Schrodi et al. (2025, arXiv:2404.07983).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mdsgap import stats


# Published values the book compares against: (value, source). Liang et al. (2022) measured CLIP ViT-B/32
# on 5,000 MSCOCO validation pairs.
REFERENCE = {
    "L2M, CLIP ViT-B/32 on MSCOCO": (0.82, "liang2022mind"),
    "image cone, pretrained CLIP on MSCOCO": (0.47, "liang2022mind"),
    "text cone, pretrained CLIP on MSCOCO": (0.51, "liang2022mind"),
    "image cone, random init on real data": (0.72, "liang2022mind"),
    "text cone, random init on real data": (0.67, "liang2022mind"),
}


def _as_tensor(a) -> torch.Tensor:
    t = torch.as_tensor(a)
    if t.ndim != 2:
        raise ValueError(f"Expected a 2-D (n, d) embedding matrix, got shape {tuple(t.shape)}.")
    return t.double()


def normalize(a) -> torch.Tensor:
    """Rows scaled to unit L2 norm (float64)."""
    return F.normalize(_as_tensor(a), dim=-1)


def _pair(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = normalize(x), normalize(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"Image and text embeddings differ in width: {x.shape[1]} vs {y.shape[1]}.")
    return x, y


def gap_vector(x, y) -> torch.Tensor:
    """delta = mean image embedding - mean text embedding (Liang et al.'s sign)."""
    x, y = _pair(x, y)
    return x.mean(0) - y.mean(0)


def l2m(x, y) -> float:
    """L2M: distance between the modality centroids, ||mean(x) - mean(y)||."""
    return float(gap_vector(x, y).norm())


def l2i(x, y) -> float:
    """L2I: mean distance between matched pairs, mean_i ||x_i - y_i||."""
    x, y = _pair(x, y)
    if x.shape != y.shape:
        raise ValueError(f"L2I needs matched pairs: got {x.shape[0]} images and {y.shape[0]} texts.")
    return float((x - y).norm(dim=1).mean())


def cone(x) -> float:
    """Cone effect: mean off-diagonal cosine similarity within one modality.

    For unit rows, sum_{i != j} <x_i, x_j> = ||sum_i x_i||^2 - n, so this is O(n d), not O(n^2 d).
    """
    x = normalize(x)
    n = x.shape[0]
    if n < 2:
        raise ValueError("The cone effect needs at least two embeddings.")
    s = x.sum(0)
    return float((s @ s - n) / (n * (n - 1)))


def rmg(x, y, eps: float = 1e-3) -> float:
    """Relative modality gap (Schrodi et al.): matched-pair distance relative to within-modality spread.

    m = (1 - mean_i cos(x_i, y_i)) / 2, clamped at eps; d = (1 - cone) / 2 per modality;
    RMG = m / (m + (d_x + d_y) / 2).
    """
    x, y = _pair(x, y)
    if x.shape != y.shape:
        raise ValueError(f"RMG needs matched pairs: got {x.shape[0]} images and {y.shape[0]} texts.")
    m = max((1 - float((x * y).sum(1).mean())) / 2, eps)
    dx, dy = (1 - cone(x)) / 2, (1 - cone(y)) / 2
    return m / (m + (dx + dy) / 2)


def pairwise_cosines(x, max_pairs: int = 20_000, seed: int = 0) -> np.ndarray:
    """A uniform sample of off-diagonal cosine similarities within one modality (for histograms)."""
    x = normalize(x)
    n = x.shape[0]
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(0, n, (max_pairs,), generator=g)
    j = torch.randint(0, n - 1, (max_pairs,), generator=g)
    j = j + (j >= i).long()  # uniform over j != i
    return (x[i] * x[j]).sum(1).numpy()


def linear_separability(x, y, test_frac: float = 0.3, seed: int = 0, shuffle_labels: bool = False) -> float:
    """Held-out accuracy of a logistic-regression probe telling image from text embeddings.

    The split is by pair: image i and caption i land on the same side, so the probe cannot pass by
    memorising a pair. Classes are balanced by construction, so chance is 0.5.

    `shuffle_labels=True` is the control task: within every pair the "image" and "text" labels are
    swapped at random, in the training and the test half alike, so the labels carry no information
    and a sound pipeline scores about 0.5.
    """
    from sklearn.linear_model import LogisticRegression

    x, y = _pair(x, y)
    n = x.shape[0]
    if n < 10:
        raise ValueError("Linear separability needs at least 10 pairs.")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_test = max(1, int(round(test_frac * n)))
    test, train = perm[:n_test], perm[n_test:]
    swap = rng.random(n) < 0.5 if shuffle_labels else np.zeros(n, dtype=bool)

    def split(idx):
        feats = np.concatenate([x[idx].numpy(), y[idx].numpy()])
        is_image = np.concatenate([np.ones(len(idx)), np.zeros(len(idx))])
        flip = np.concatenate([swap[idx], swap[idx]])
        return feats, np.where(flip, 1 - is_image, is_image)

    clf = LogisticRegression(C=1.0, max_iter=2000).fit(*split(train))
    feats, labels = split(test)
    return float((clf.predict(feats) == labels).mean())


METRICS = {"L2M": l2m, "L2I": l2i, "RMG": rmg,
           "cone (image)": lambda x, y: cone(x), "cone (text)": lambda x, y: cone(y)}


def gap_metrics(x, y, seed: int = 0) -> dict[str, float]:
    """All gap metrics for one set of paired embeddings, as a flat dict (a row of the book's tables)."""
    out = {name: fn(x, y) for name, fn in METRICS.items()}
    out["linear separability"] = linear_separability(x, y, seed=seed)
    return out


def project_2d(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Both modalities on the top two principal components of their union (unit rows, jointly centred)."""
    x, y = _pair(x, y)
    z = torch.cat([x, y])
    z = z - z.mean(0)
    _, _, v = torch.linalg.svd(z, full_matrices=False)
    p = (z @ v[:2].T).numpy()
    return p[: len(x)], p[len(x):]


def metrics_table(embedded: dict, n_boot: int = 200, seed: int = 0) -> "pd.DataFrame":
    """Every gap metric for several models ({label: (x, y)}) with its 95% bootstrap interval over pairs,
    then separability and its control task (no interval): one row per (model, metric) in the book's
    layout (value, low, high)."""
    import pandas as pd

    rows = []
    for label, (x, y) in embedded.items():
        for name, fn in METRICS.items():
            est = stats.bootstrap(fn, *_pair(x, y), n_boot=n_boot, seed=seed)
            rows.append({"model": label, "metric": name, **dict(zip(stats.COLUMNS, est)), "pairs": len(x)})
        for name, shuffle in (("linear separability", False), ("separability, control task", True)):
            sep = linear_separability(x, y, seed=seed, shuffle_labels=shuffle)
            rows.append({"model": label, "metric": name, "value": sep, "low": np.nan, "high": np.nan,
                         "pairs": len(x)})
    return pd.DataFrame(rows)
