"""Editing embeddings through a sparse autoencoder: switch a set of latents off and decode what is left.

This is the ablation of Yan et al. (2026): remove each MDS class (ImgD, TxtD, CMD) from the reconstructed
embeddings and measure what zero-shot classification and retrieval lose. A class is only informative
against a control: `mdsgap.edit.control` compares it with random sets drawn outside the class and matched on
what they carry.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mdsgap import gap
from mdsgap.attribution import dominance
from mdsgap.clip import evaluation
from mdsgap.features.sae import SparseAutoencoder


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


def zeroed(codes: torch.Tensor, latents) -> torch.Tensor:
    """SAE codes with the given latents switched off: the edit every class removal makes, on codes computed
    once (readouts that score hundreds of random sets)."""
    keep = torch.ones(codes.shape[1])
    keep[torch.as_tensor(np.asarray(latents, dtype=np.int64))] = 0.0
    return codes * keep


def downstream(x: torch.Tensor, y: torch.Tensor, classes: dict[str, torch.Tensor], factors: pd.DataFrame) -> dict:
    """Mean zero-shot accuracy over the shared factors, image-to-text recall@1 and consistent@1 (as
    `evaluation.retrieval` counts them, without its other directions and chance rates)."""
    return _Scorer(factors, classes)(x, y, classes)


class _Scorer:
    """`downstream` with the factor table read once: the readouts score hundreds of edits of the same
    pairs, so the truth codes and the consistency table are arrays, and one row max gives both recall@1
    (no caption strictly above the match) and the top caption (the first maximum, as argmax picks)."""

    def __init__(self, factors: pd.DataFrame, classes):
        self.truth = {k: factors[k].cat.codes.to_numpy() for k in classes}
        self.naming = evaluation.naming(factors)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, classes: dict[str, torch.Tensor]) -> dict:
        zs = [float((evaluation.zero_shot_predict(x, c) == self.truth[k]).mean()) for k, c in classes.items()]
        sim = F.normalize(x.float(), dim=-1) @ F.normalize(y.float(), dim=-1).T
        best, top = sim.max(1)
        recall = float((best <= sim.diagonal()).float().mean())
        top = top.numpy()
        return {"zero-shot": float(np.mean(zs)), "recall@1": recall,
                "consistent@1": float(evaluation.consistent(self.naming, np.arange(len(top)), top).mean())}


def removal_readout(model: SparseAutoencoder, x: torch.Tensor, y: torch.Tensor, classes: dict[str, torch.Tensor],
                    factors: pd.DataFrame):
    """A readout for `control.compare`: latents -> the `downstream` scores of the SAE's reconstruction with
    those latents removed. Images, captions and zero-shot class embeddings all go through the same edit, so
    both sides of every comparison are edited alike; the codes are computed once, so hundreds of random
    sets are cheap."""
    with torch.no_grad():
        codes = {"x": model.encode(gap.normalize(x).float()), "y": model.encode(gap.normalize(y).float()),
                 **{f"class {k}": model.encode(gap.normalize(v).float()) for k, v in classes.items()}}

    score = _Scorer(factors, classes)

    @torch.no_grad()
    def run(latents) -> dict:
        out = {k: model.decode(zeroed(z, latents)) for k, z in codes.items()}
        return score(out["x"], out["y"], {k: out[f"class {k}"] for k in classes})
    return run


def factor_probes(e: torch.Tensor, factors: pd.DataFrame, names) -> dict:
    """A logistic-regression probe per factor on unit image embeddings, {name: (weights, bias)} as tensors:
    a cheap reader of what an edited embedding says, for screening edits before any image is drawn. The
    probes' 3-fold cross-validated accuracy per factor is in the dict's `accuracy` attribute."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    x = gap.normalize(e).double().numpy()
    out = _Probes()
    for name in names:
        y = factors[name].cat.codes.to_numpy()
        counts = pd.Series(factors[name]).value_counts()
        counts = counts[counts > 0]
        if len(counts) < 2 or counts.max() < 3:
            raise ValueError(f"The probe of {name!r} needs two values or more, one of them on 3 rows or more (it "
                             f"is scored by 3-fold cross-validation); got {counts.to_dict()}: use more rows.")
        out.accuracy[name] = float(cross_val_score(LogisticRegression(max_iter=1000), x, y, cv=3).mean())
        clf = LogisticRegression(max_iter=1000).fit(x, y)
        w = clf.coef_ if len(clf.classes_) > 2 else np.concatenate([-clf.coef_, clf.coef_]) / 2
        b = clf.intercept_ if len(clf.classes_) > 2 else np.concatenate([-clf.intercept_, clf.intercept_]) / 2
        out[name] = (torch.as_tensor(w.T, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32))
    return out


class _Probes(dict):
    """{factor: (weights, bias)} with the probes' cross-validated `accuracy` beside."""

    def __init__(self):
        super().__init__()
        self.accuracy: dict[str, float] = {}


def probe_readout(model: SparseAutoencoder, e: torch.Tensor, probes: dict):
    """A readout for `control.compare`: latents -> per factor, the share of the embeddings e whose probe-read
    value changes between the SAE's plain reconstruction and the one with those latents removed (what
    `reader.changes` says of drawn images, read off the embeddings)."""
    with torch.no_grad():
        codes = model.encode(gap.normalize(e).float())
        plain = gap.normalize(model.decode(codes)).float()
        plain = {f: (plain @ w + b).argmax(1) for f, (w, b) in probes.items()}

    @torch.no_grad()
    def run(latents) -> dict:
        edited = gap.normalize(model.decode(zeroed(codes, latents))).float()
        return {f: float(((edited @ w + b).argmax(1) != plain[f]).float().mean()) for f, (w, b) in probes.items()}
    return run


METRICS = ("zero-shot", "recall@1", "consistent@1")


def drawn_edits(model: SparseAutoencoder, e: torch.Tensor, labels, carry: pd.DataFrame, plain: pd.DataFrame,
                draw, cfg, **tags) -> list[dict]:
    """The images' side of an edit study: per class, what `draw` (embeddings -> the reader's table) sees
    change against the plain reconstruction's drawing `plain` (`reader.changes`) when the class is removed,
    and when each of `cfg.n_random` matched random sets is (`control.matched_sets`). One row per drawing:
    the tags, class, kind ('class' or 'random'), draw (0 for the class, 1.. for the random sets), and the
    share of drawings changed per factor."""
    from mdsgap.edit import control, reader

    pool, rng, rows = control.classified(labels), np.random.default_rng(cfg.seed), []
    for cls in dominance.CLASSES:
        members, sets, _ = control.class_sets(labels, cls, pool, carry, cfg, rng)
        if sets is None:
            continue
        for k, latents in enumerate([members, *sets]):
            got = draw(without_latents(model, e, latents), cfg.seed)
            rows.append({**tags, "class": cls, "kind": "random" if k else "class", "draw": k,
                         **reader.changes(plain, got)})
    return rows


def confirmed(drawn: pd.DataFrame, factors) -> pd.DataFrame:
    """Per labelling, class and factor of `drawn_edits` rows (several seeds): the share of drawings the class's
    removal changed (mean over seeds), that of its matched random sets (each set's mean over seeds, then the
    largest), and whether the class's is larger than every random set's (the drawings confirm a screen)."""
    rows = []
    if drawn.empty:  # no class had a control to draw beside it
        return pd.DataFrame(columns=["labelling", "class", "factor", "drawn change", "drawn random (max)",
                                     "confirmed"])
    for (name, cls), d in drawn.groupby(["labelling", "class"], sort=False):
        for f in factors:
            mine = d[d.kind == "class"][f].mean()
            rand = d[d.kind == "random"].groupby("draw")[f].mean()
            rows.append({"labelling": name, "class": cls, "factor": f, "drawn change": float(mine),
                         "drawn random (max)": float(rand.max()) if len(rand) else np.nan,
                         "confirmed": bool(len(rand) and mine > rand.max())})
    return pd.DataFrame(rows)


def against_prediction(moved: pd.DataFrame, predicted: dict[str, str]) -> pd.DataFrame:
    """Per labelling: the factors each class moves beyond its matched random sets (rows of
    `control.verdicts` with a `factor` column and verdict 'above'), split into those the class should carry
    (`predicted`: factor -> its expected class, e.g. from `groundtruth.EXPECTED` of the world's kinds) and
    those it should not, and the predicted moves that are missing. One row per labelling, each list as text:
    'shape and colour (CMD)' ('nothing')."""
    rows = []
    for name, d in moved.groupby("labelling", sort=False):
        beyond = {(c, f) for c, f, v in zip(d["class"], d.factor, d.verdict) if v == "above"}
        want = {(predicted[f], f) for f in d.factor.unique() if f in predicted}
        join = lambda pairs: _by_class(sorted(pairs))
        rows.append({"labelling": name, "as predicted": join(beyond & want),
                     "not predicted": join(beyond - want), "missing": join(want - beyond)})
    return pd.DataFrame(rows)


def specificity(screen: pd.DataFrame, predicted: dict[str, str]) -> pd.DataFrame:
    """Per labelling and class of a `control.compare` table of several seeds (columns seed, labelling, class,
    readout = factor): how much more the class's removal moves the factors it should carry (`predicted`:
    factor -> expected class) than the others, each as its change beyond the matched random sets; a pure
    mass effect moves all alike and cancels. Columns: the predicted factors, value, low, high (t-interval
    over seeds); NaN where a class predicts no factor, or every factor, or has no matched control."""
    from mdsgap import stats

    rows = []
    d = screen.assign(beyond=screen["change"] - screen["random mean"])
    if "note" in d:  # a class without a matched control has no change beyond random
        d = d[d.note.fillna("") == ""]
    if d.empty:
        return pd.DataFrame(columns=["labelling", "class", "predicted", *stats.COLUMNS])
    for (name, cls), g in d.groupby(["labelling", "class"], sort=False):
        own = [f for f in g.readout.unique() if predicted.get(f) == cls]
        per_seed = [s.loc[s.readout.isin(own), "beyond"].mean() - s.loc[~s.readout.isin(own), "beyond"].mean()
                    for _, s in g.groupby("seed")] if own and len(own) < g.readout.nunique() else [np.nan]
        rows.append({"labelling": name, "class": cls, "predicted": ", ".join(own) or "none",
                     **dict(zip(stats.COLUMNS, stats.interval(per_seed)))})
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
