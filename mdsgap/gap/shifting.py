"""Moving one modality towards the other: Liang et al.'s shift, Schrodi et al.'s gap dimensions, and
Chowers et al.'s projected gap.

Sign conventions, used everywhere in the book:

- Liang et al. (2022): delta = mean(x) - mean(y) (image minus text), u = delta / ||delta||, and a shift
  of size lambda moves images by -lambda/2 u and texts by +lambda/2 u, each then renormalised; lambda =
  ||delta|| meets the centroids halfway from each side.
- Chowers et al. (2026): the *database* modality D (the one searched) moves towards the *query* modality Q:
  g = mean(Q) - mean(D); g' = g - V V^T g, with V the top-k principal directions of D (centred); D' = D +
  alpha g'. alpha = 1 with k = 0 (no projection) closes the centroid gap. No renormalisation: their theory is
  about translations, and cosine similarity on renormalised rows is measured alongside.
"""
from __future__ import annotations

import torch

from mdsgap.gap.metrics import _pair, normalize


def gap_direction(x, y) -> torch.Tensor:
    """u = delta / ||delta||, delta = mean(x) - mean(y) of the unit embeddings."""
    x, y = _pair(x, y)
    delta = x.mean(0) - y.mean(0)
    return delta / delta.norm().clamp_min(1e-12)


def shift(e, u: torch.Tensor, amount: float) -> torch.Tensor:
    """Unit embeddings moved by amount * u and renormalised."""
    return normalize(normalize(e) + amount * u)


def liang_shift(x, y, lam: float, texts: dict | None = None):
    """(x', y', texts'): images moved by -lam/2 and captions by +lam/2 along the unit gap direction of (x, y),
    renormalised (Liang et al. 2022); `texts` ({name: embeddings}, e.g. zero-shot class prompts) move with
    the captions ({} when None)."""
    u = gap_direction(x, y)
    moved = {k: shift(v, u, lam / 2) for k, v in (texts or {}).items()}
    return shift(x, u, -lam / 2), shift(y, u, lam / 2), moved


def gap_dimensions(x, y) -> torch.Tensor:
    """Embedding dimensions sorted by |mean(x)[d] - mean(y)[d]|, largest first (Schrodi et al.)."""
    x, y = _pair(x, y)
    return torch.argsort((x.mean(0) - y.mean(0)).abs(), descending=True)


def drop_dimensions(e, dims) -> torch.Tensor:
    """Unit embeddings with the given dimensions set to zero, renormalised."""
    e = normalize(e).clone()
    e[:, torch.as_tensor(dims, dtype=torch.long)] = 0
    return normalize(e)


def principal_directions(e, k: int) -> torch.Tensor:
    """(d, k): the top-k principal directions of the rows of e (centred), orthonormal columns."""
    e = normalize(e)
    if not 0 <= k <= min(e.shape):
        raise ValueError(f"k must be between 0 and {min(e.shape)}, got {k}.")
    _, _, vt = torch.linalg.svd(e - e.mean(0), full_matrices=False)
    return vt[:k].T


def projected_gap(query, database, k: int) -> torch.Tensor:
    """g' = g - V V^T g with g = mean(query) - mean(database) and V the database's top-k directions."""
    q, d = _pair(query, database)
    g = q.mean(0) - d.mean(0)
    v = principal_directions(d, k)
    return g - v @ (v.T @ g)


def translate(database, direction: torch.Tensor, alpha: float) -> torch.Tensor:
    """database + alpha * direction (unit rows in, translated rows out; not renormalised)."""
    return normalize(database) + alpha * direction


def orthogonality(direction: torch.Tensor, e, k: int) -> float:
    """Share of a direction's squared norm that lies outside the top-k principal subspace of e (1 = orthogonal)."""
    v = principal_directions(e, k)
    direction = direction.double()
    inside = (v.T @ direction).pow(2).sum()
    return float(1 - inside / direction.pow(2).sum().clamp_min(1e-24))
