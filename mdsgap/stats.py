"""The book's statistics: one interval over seeds, one bootstrap, one table layout.

Every interval in the book is (value, low, high) and every table of intervals has those three columns
(`COLUMNS`). Results that come from several seeds get a Student-t interval over the seeds, the
independent replicates of an experiment; the tests check its coverage on simulated data with a known
answer (a bootstrap over 3 seeds has about 10 distinct resamples and covers well under 95%). A single
model's metric on many pairs gets a percentile bootstrap over the pairs.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import stats as _scipy

COLUMNS = ("value", "low", "high")
"""The one interval layout: an estimate and its interval's ends."""


def interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of independent replicates (one number per seed): mean ± t_{n-1} s / sqrt(n).

    NaNs are dropped; a single replicate gives its value with a NaN interval, and identical replicates a
    zero-width one.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return (np.nan, np.nan, np.nan)
    mean = float(v.mean())
    if len(v) == 1:
        return (mean, np.nan, np.nan)
    half = float(_scipy.t.ppf((1 + level) / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return (mean, mean - half, mean + half)


def seed_interval(groups: Sequence[np.ndarray], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of results with several units (features, images) per seed.

    The estimate is the mean of the seeds' means and the interval `interval` over those means: the seeds
    are the replicates, so the interval carries the seed-to-seed spread and, through each mean, the units'.
    With a single seed the units themselves are the replicates (an interval for that one model). NaNs are
    dropped and empty groups left out.
    """
    groups = [np.asarray(g, dtype=np.float64).ravel() for g in groups]
    groups = [g[np.isfinite(g)] for g in groups]
    groups = [g for g in groups if len(g)]
    if not groups:
        return (np.nan, np.nan, np.nan)
    if len(groups) == 1:
        return interval(groups[0], level)
    return interval([g.mean() for g in groups], level)


def bootstrap(fn: Callable, *arrays, n_boot: int = 200, level: float = 0.95,
              seed: int = 0) -> tuple[float, float, float]:
    """(fn(*arrays), low, high): a percentile bootstrap over rows, resampled together across `arrays`
    (paired embeddings stay paired). For one model's metric on many pairs."""
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"bootstrap needs arrays with one row per unit; got lengths {[len(a) for a in arrays]}.")
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        reps.append(fn(*(a[_index(a, idx)] for a in arrays)))
    lo, hi = np.nanquantile(np.asarray(reps, dtype=np.float64), [(1 - level) / 2, (1 + level) / 2])
    return float(fn(*arrays)), float(lo), float(hi)


def _index(a, idx: np.ndarray):
    """Row indices in the array's own kind (a torch tensor takes a tensor of indices)."""
    if type(a).__module__.startswith("torch"):
        import torch

        return torch.as_tensor(idx)
    return idx
