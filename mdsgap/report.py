"""Tables the chapters report: results of several independently trained models, summarised for the prose."""
from __future__ import annotations

import numpy as np
import pandas as pd

from mdsgap import stats


def seed_summary(df: pd.DataFrame, by: list[str], value: str, seeds, reference: str, n_boot: int = 1000,
                 seed: int = 0) -> pd.DataFrame:
    """Per group of `by`: the mean of `value` over the seed models (rows whose `model` is in `seeds`) with its
    95% bootstrap interval (columns mean, low, high), and the `reference` model's value in a column of its name
    (NaN where the group has none)."""
    rows = []
    for key, g in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        mean, lo, hi = stats.seeds_ci(g[g.model.isin(seeds)][value], n_boot=n_boot, seed=seed)
        main = g[g.model == reference][value]
        rows.append({**dict(zip(by, key)), "mean": mean, "low": lo, "high": hi,
                     reference: float(main.iloc[0]) if len(main) else np.nan})
    return pd.DataFrame(rows)


def interval_table(summary: pd.DataFrame, index, values: list[str], digits: int = 3) -> pd.DataFrame:
    """A readable table of a summary with `<value> low` / `<value> high` columns: one "mean [low, high]"
    string per value, indexed by `index` (a column or a list of them)."""
    out = summary.set_index(index)
    cells = {v: [f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
                 for m, lo, hi in zip(out[v], out[f"{v} low"], out[f"{v} high"])] for v in values}
    return pd.DataFrame(cells, index=out.index)
