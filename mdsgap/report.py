"""Tables the chapters report: results of several independently trained models, summarised for the prose."""
from __future__ import annotations

import numpy as np
import pandas as pd

from mdsgap import stats


def seed_summary(df: pd.DataFrame, by: list[str], value: str, seeds, reference: str) -> pd.DataFrame:
    """Per group of `by`: the mean of `value` over the seed models (rows whose `model` is in `seeds`) with its
    95% t-interval over seeds (`stats.interval`; columns mean, low, high), and the `reference` model's value in
    a column of its name (NaN where the group has none)."""
    rows = []
    for key, g in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        mean, lo, hi = stats.interval(g[g.model.isin(seeds)][value])
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


def seed_intervals(table: pd.DataFrame, by: list[str], values: list[str]) -> pd.DataFrame:
    """Mean and 95% interval over seeds (column `seed`) of each value per group of `by`: columns
    `<value>`, `<value> low`, `<value> high`."""
    rows = []
    for key, d in table.groupby(by, sort=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        for v in values:
            mean, lo, hi = stats.interval(d.groupby("seed")[v].mean().to_numpy())
            row.update({v: mean, f"{v} low": lo, f"{v} high": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def relation(a: pd.Series, b: pd.Series, value: str, other: str | None = None) -> str:
    """'above', 'below' or 'within': where a's 95% interval of `value` lies against b's interval of
    `other` (default: the same value; rows of `seed_intervals`); intervals that overlap are 'within'."""
    other = other or value
    if a[f"{value} low"] > b[f"{other} high"]:
        return "above"
    if a[f"{value} high"] < b[f"{other} low"]:
        return "below"
    return "within"


def paired(table: pd.DataFrame, by: list[str], a: str, b: str) -> pd.DataFrame:
    """Per group of `by`: the mean over seeds of a - b, taken within each seed (both come from the same
    models and inputs), its 95% interval over seeds, and whether a lies 'above', 'below' or 'within'
    (the interval of the difference clear of zero or not)."""
    rows = []
    for key, d in table.groupby(by, sort=False):
        diff = d.groupby("seed").apply(lambda g: (g[a] - g[b]).mean(), include_groups=False)
        mean, lo, hi = stats.interval(diff.to_numpy())
        side = "above" if lo > 0 else "below" if hi < 0 else "within"
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "difference": mean,
                     "low": lo, "high": hi, "relation": side})
    return pd.DataFrame(rows)
