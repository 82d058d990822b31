"""Confidence intervals for results that come from several seeds, each with many units (features, pairs)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def mean_ci(groups: Sequence[np.ndarray], n_boot: int = 1000, level: float = 0.95,
            seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of the group means and a hierarchical bootstrap interval.

    Each replicate resamples the groups (seeds) with replacement, then the units within each drawn group,
    so the interval carries both the seed-to-seed and the unit-to-unit spread. NaNs are dropped; empty
    groups are left out.
    """
    groups = [np.asarray(g, dtype=np.float64) for g in groups]
    groups = [g[np.isfinite(g)] for g in groups]
    groups = [g for g in groups if len(g)]
    if not groups:
        return (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        drawn = rng.integers(0, len(groups), len(groups))
        reps[b] = np.mean([groups[i][rng.integers(0, len(groups[i]), len(groups[i]))].mean() for i in drawn])
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return float(np.mean([g.mean() for g in groups])), float(lo), float(hi)


def seeds_ci(values, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) of one number per seed: `mean_ci` with each seed its own group."""
    return mean_ci([np.atleast_1d(v) for v in np.asarray(values, dtype=np.float64)], n_boot, level, seed)
