"""Robustness of nearest-neighbour decisions to perturbed embeddings (Chowers et al., 2026).

Rob = P[NN(q, D) == NN(q, perturb(D))]: the share of queries whose nearest database item (by cosine
similarity) is unchanged when the database embeddings are perturbed. Perturbations are Gaussian noise of a
given variance per coordinate and uniform quantisation to a number of bins; caption paraphrase is a change of
the text itself and is measured by the chapters as agreement between two prompt templates.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def nearest(query: torch.Tensor, database: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Index of the most cosine-similar database row for every query row."""
    d = F.normalize(database.double(), dim=-1)
    return torch.cat([(F.normalize(q.double(), dim=-1) @ d.T).argmax(1) for q in query.split(batch_size)])


def gaussian(variance: float, seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """Perturbation: add N(0, variance) noise to every coordinate."""
    if variance < 0:
        raise ValueError(f"variance must be >= 0, got {variance}.")

    def perturb(e):
        g = torch.Generator().manual_seed(seed)
        return e + variance ** 0.5 * torch.randn(e.shape, generator=g, dtype=torch.float64).to(e.dtype)
    return perturb


def quantize(bins: int, low: float = -1.0, high: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """Perturbation: round every coordinate to the centre of one of `bins` equal bins on [low, high]."""
    if bins < 2:
        raise ValueError(f"quantisation needs at least 2 bins, got {bins}.")
    width = (high - low) / bins

    def perturb(e):
        idx = ((e - low) / width).floor().clamp(0, bins - 1)
        return low + (idx + 0.5) * width
    return perturb


def robustness(query: torch.Tensor, database: torch.Tensor, perturb: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Share of queries whose nearest database row is the same before and after `perturb(database)`."""
    return float((nearest(query, database) == nearest(query, perturb(database))).double().mean())
