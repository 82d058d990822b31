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


def intervals(table, by: list[str], values: list[str], seed_column: str = "seed",
              level: float = 0.95):
    """Per group of `by` and quantity in `values`: the mean over seeds of each seed's mean and its
    t-interval (`interval`), in the book's layout: columns `by`, quantity, value, low, high, seeds."""
    import pandas as pd

    rows = []
    for key, d in table.groupby(by, sort=False):
        keys = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        per_seed = d.groupby(seed_column)
        for v in values:
            est = interval(per_seed[v].mean().to_numpy(), level)
            rows.append({**keys, "quantity": v, **dict(zip(COLUMNS, est)), "seeds": per_seed.ngroups})
    return pd.DataFrame(rows)


def paired(table, by: list[str], a: str, b: str, seed_column: str = "seed", level: float = 0.95):
    """Per group of `by`: the mean over seeds of a - b taken within each seed (both measured on the same
    models and inputs) with its interval, in the book's layout, and its `sign`."""
    import pandas as pd

    rows = []
    for key, d in table.groupby(by, sort=False):
        diff = d.groupby(seed_column).apply(lambda g: (g[a] - g[b]).mean(), include_groups=False)
        est = interval(diff.to_numpy(), level)
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), **dict(zip(COLUMNS, est)),
                     "relation": sign(est[1], est[2])})
    return pd.DataFrame(rows)


def position(a, b) -> str:
    """'above', 'below' or 'within': where interval a (a row with low and high) lies against interval b;
    intervals that overlap are 'within'."""
    if a["low"] > b["high"]:
        return "above"
    if a["high"] < b["low"]:
        return "below"
    return "within"


def sign(low: float, high: float) -> str:
    """'above', 'below' or 'within': an interval of a difference clear of zero on either side, or not."""
    return "above" if low > 0 else "below" if high < 0 else "within"


def formatted(table, index, columns: str = "quantity", digits: int = 3):
    """A table in the book's layout as text for reading: "value [low, high]" per cell (the value alone
    where there is no interval), rows `index` (a column or a list of them) and one column per value of
    `columns`."""
    import pandas as pd

    idx = [index] if isinstance(index, str) else list(index)
    cells = [f"{v:.{digits}f}" + ("" if pd.isna(lo) else f" [{lo:.{digits}f}, {hi:.{digits}f}]")
             for v, lo, hi in zip(table["value"], table["low"], table["high"])]
    out = table.assign(text=cells).pivot(index=idx, columns=columns, values="text")
    rows = table[idx].drop_duplicates()
    rows = rows[idx[0]] if len(idx) == 1 else pd.MultiIndex.from_frame(rows)
    return out.reindex(index=rows, columns=list(dict.fromkeys(table[columns]))).rename_axis(columns=None)


def seed_summary(df, by: list[str], value: str, seeds, reference: str):
    """Per group of `by`: the mean of `value` over the seed models (rows whose `model` is in `seeds`) with its
    95% t-interval over seeds (`interval`; columns value, low, high), and the `reference` model's value
    in a column of its name (NaN where the group has none)."""
    import pandas as pd

    rows = []
    for key, g in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        mean, lo, hi = interval(g[g.model.isin(seeds)][value])
        main = g[g.model == reference][value]
        rows.append({**dict(zip(by, key)), "value": mean, "low": lo, "high": hi,
                     reference: float(main.iloc[0]) if len(main) else np.nan})
    return pd.DataFrame(rows)
