"""Tables the chapters report: results of several independently trained models, summarised for the prose."""
from __future__ import annotations

import numpy as np
import pandas as pd

from mdsgap import stats


def seed_summary(df: pd.DataFrame, by: list[str], value: str, seeds, reference: str) -> pd.DataFrame:
    """Per group of `by`: the mean of `value` over the seed models (rows whose `model` is in `seeds`) with its
    95% t-interval over seeds (`stats.interval`; columns value, low, high), and the `reference` model's value
    in a column of its name (NaN where the group has none)."""
    rows = []
    for key, g in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        mean, lo, hi = stats.interval(g[g.model.isin(seeds)][value])
        main = g[g.model == reference][value]
        rows.append({**dict(zip(by, key)), "value": mean, "low": lo, "high": hi,
                     reference: float(main.iloc[0]) if len(main) else np.nan})
    return pd.DataFrame(rows)
