"""Editing embeddings through a sparse autoencoder: switch a set of latents off and decode what is left.

This is the ablation of Yan et al. (2026): remove each MDS class (ImgD, TxtD, CMD) from the reconstructed
embeddings and measure what zero-shot classification and retrieval lose. A class is only informative
against a control, so every class is also compared with random latent sets of the same size.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mdsgap import dominance, evaluation, gap
from mdsgap.sae import SparseAutoencoder


@torch.no_grad()
def without_latents(model: SparseAutoencoder, e: torch.Tensor, latents=()) -> torch.Tensor:
    """The SAE's reconstruction of the unit embeddings e with the given latents set to zero."""
    return scaled_latents(model, e, latents, 0.0)


@torch.no_grad()
def scaled_latents(model: SparseAutoencoder, e: torch.Tensor, latents=(), factor: float = 2.0
                   ) -> torch.Tensor:
    """The SAE's reconstruction of the unit embeddings e with the given latents multiplied by factor
    (0 removes them; above 1 amplifies them, the other edit of Yan et al.'s generation study)."""
    z = model.encode(gap.normalize(e).float())
    z[:, torch.as_tensor(np.asarray(latents, dtype=np.int64))] *= factor
    return model.decode(z)


def downstream(x: torch.Tensor, y: torch.Tensor, classes: dict[str, torch.Tensor], factors: pd.DataFrame) -> dict:
    """Mean zero-shot accuracy over the shared factors, image-to-text recall@1 and consistent@1."""
    zs = evaluation.zero_shot_scores(x, classes, factors)
    r = evaluation.retrieval(x, y, factors, ks=(1,)).set_index("metric")["value"]
    return {"zero-shot": float(zs["accuracy"].mean()), "recall@1": float(r["recall@1"].iloc[0]),
            "consistent@1": float(r["consistent@1"])}


def class_removal(model: SparseAutoencoder, x: torch.Tensor, y: torch.Tensor, classes: dict[str, torch.Tensor],
                  factors: pd.DataFrame, labels: np.ndarray, n_random: int = 20, seed: int = 0) -> pd.DataFrame:
    """Downstream scores after removing each MDS class, and random same-size sets of classified latents.

    One row per edit: `removed` (the class, or 'random <class>-sized'), `kind` ('class', 'random' or
    'none' for the plain reconstruction), `size`, and the `downstream` scores. Text class embeddings go
    through the same edit as the images, so both sides of every comparison are edited alike.
    """
    def run(latents):
        edit = lambda e: without_latents(model, e, latents)
        return downstream(edit(x), edit(y), {k: edit(v) for k, v in classes.items()}, factors)

    rows = [{"removed": "nothing", "kind": "none", "size": 0, **run([])}]
    for removed, kind, _, latents in removal_sets(labels, n_random, seed):
        rows.append({"removed": removed, "kind": kind, "size": len(latents), **run(latents)})
    return pd.DataFrame(rows)


METRICS = ("zero-shot", "recall@1", "consistent@1")


def against_random(removal: pd.DataFrame, metrics=METRICS) -> pd.DataFrame:
    """Per class and metric: the drop from the plain reconstruction when the class is removed, beside the
    drops of its same-size random sets (mean, 95% range, and the share of random sets that hurt less)."""
    base = removal[removal.kind == "none"].iloc[0]
    rows = []
    for cls in dominance.CLASSES:
        c = removal[(removal.kind == "class") & (removal.removed == cls)]
        if c.empty:
            continue
        r = removal[removal.removed == f"random, {cls}-sized"]
        for metric in metrics:
            drop, rand = base[metric] - c[metric].iloc[0], base[metric] - r[metric]
            rows.append({"class": cls, "size": int(c["size"].iloc[0]), "metric": metric, "drop, class": drop,
                         "drop, random (mean)": rand.mean(), "random 2.5%": rand.quantile(0.025),
                         "random 97.5%": rand.quantile(0.975), "share of random sets hurting less": (rand < drop).mean()})
    return pd.DataFrame(rows)


def removal_sets(labels, n_random: int = 20, seed: int = 0, classes=dominance.CLASSES) -> list[tuple]:
    """What a class-removal study removes: each non-empty class of a labelling, and `n_random` random sets of
    classified latents of the same size (the control the paper's ablations lack), as (removed, kind, draw,
    latents) with removed 'random, <class>-sized' for the random sets."""
    labels = np.asarray(labels, dtype=object)
    rng = np.random.default_rng(seed)
    classified = np.flatnonzero(np.isin(labels, classes))
    out = []
    for cls in classes:
        members = np.flatnonzero(labels == cls)
        if len(members) == 0:
            continue
        out.append((cls, "class", 0, members))
        out += [(f"random, {cls}-sized", "random", k, rng.choice(classified, len(members), replace=False))
                for k in range(n_random)]
    return out


def changes_against_random(table: pd.DataFrame, columns) -> pd.DataFrame:
    """Per labelling, class and column (one row per seed and edit in `table`): the class's mean over seeds with
    its 95% interval, beside its random same-size sets (mean and 95% range), and whether the class's whole
    interval lies above the random range."""
    from mdsgap import stats

    rows = []
    for (name, cls), d in table[table.kind == "class"].groupby(["labelling", "removed"], sort=False):
        rand = table[(table.labelling == name) & (table.removed == f"random, {cls}-sized")]
        for col in columns:
            mean, lo, hi = stats.interval(d[col].to_numpy())
            r_lo, r_hi = rand[col].quantile([0.025, 0.975]) if len(rand) else (np.nan, np.nan)
            rows.append({"labelling": name, "class": cls, "factor": col, "change": mean, "low": lo, "high": hi,
                         "random (mean)": rand[col].mean(), "random 2.5%": r_lo, "random 97.5%": r_hi,
                         "above random": bool(lo > r_hi and not np.isclose(lo, r_hi))})
    return pd.DataFrame(rows)


def against_prediction(moved: pd.DataFrame, predicted: dict[str, str]) -> pd.DataFrame:
    """Per labelling: the factors each class moves beyond its random sets (`changes_against_random`),
    split into those the class should carry (`predicted`: factor -> its expected class, e.g. from
    `groundtruth.EXPECTED` of the world's kinds) and those it should not, and the predicted moves that
    are missing. One row per labelling, each list as text: 'shape and colour (CMD)' ('nothing')."""
    rows = []
    for name, d in moved.groupby("labelling", sort=False):
        beyond = {(c, f) for c, f, a in zip(d["class"], d.factor, d["above random"]) if a}
        want = {(predicted[f], f) for f in d.factor.unique() if f in predicted}
        join = lambda pairs: _by_class(sorted(pairs))
        rows.append({"labelling": name, "as predicted": join(beyond & want),
                     "not predicted": join(beyond - want), "missing": join(want - beyond)})
    return pd.DataFrame(rows)


def _by_class(pairs) -> str:
    """[(class, factor), ...] as 'size and position (ImgD), shape (CMD)'; 'nothing' when empty."""
    classes = dict.fromkeys(c for c, _ in pairs)
    parts = []
    for c in classes:
        fs = [f for cc, f in pairs if cc == c]
        parts.append(f"{', '.join(fs[:-1]) + ' and ' if len(fs) > 1 else ''}{fs[-1]} ({c})")
    return ", ".join(parts) or "nothing"


def class_versions(model: SparseAutoencoder, e: torch.Tensor, labels,
                   classes=dominance.CLASSES) -> list[tuple[str, np.ndarray, torch.Tensor]]:
    """(class, its latents, the edited embeddings) for nothing removed ('none', no latents), then for each
    class that has latents under `labels` (one label per latent) removed: the rows of a before/after
    grid of class edits."""
    labels = np.asarray(labels)
    out = [("none", np.array([], dtype=np.int64), without_latents(model, e))]
    for c in classes:
        latents = np.flatnonzero(labels == c)
        if len(latents):
            out.append((c, latents, without_latents(model, e, latents)))
    return out
