"""Modality-attribution methods, head to head on the same features and pairs, against the world's ground truth.

A *method* turns the codes of one feature set on paired images and captions into *units* (latents, or
concepts made of an image-side and a caption-side latent), a dominance score per unit and a class per unit
(ImgD, TxtD, CMD; dead or rare units get no class). `attribute` runs one method; `check` reads what every
unit encodes (`groundtruth.assign_factors`), derives its expected class from the world's (q, p), and scores
the method with its two controls:

- random partition: the method's classes shuffled among its classified units (the class sizes kept);
- shuffled pairing: the method rerun after shuffling the captions across pairs. A score that reads whether
  a unit fires on *both sides of the same pair* must lose its cross-modal units; one that only reads how
  activation splits between the modalities keeps them.

Scores that estimate the image share q / (q + p) are classed with the cut points that define the world's
kinds (`world.kind_of`: CMD between 1/3 and 2/3); the paper's MDS keeps its own rules (chapter 3).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mdsgap import attribution, world
from mdsgap.attribution import dominance, groundtruth

METHODS = {"mds_interval": "MDS, interval", "mds_std": "MDS, mean ± k std",
           "energy_bimodal": "energy, bimodal rule", "energy_cuts": "energy, share cuts", "bridge": "bridge μ_B",
           "concept_coactivation": "concept, co-activation", "concept_bridge": "concept, bridge",
           "probe_partner": "probe partner"}
"""Every method, in the order the book shows them: its identifier (what code, tables and tests use) and its
label on the page (`label`)."""
NEEDS_DECODER = ("bridge", "concept_bridge")
CHOSEN = ("TopK", "probe_partner")
"""The (feature set, method) chapter 4 chooses on its development seeds and judges on fresh ones; the
application chapters label that dictionary's latents with it beside the paper's MDS (`LABELLINGS`), and
chapter 4 says whether its own build still chooses the same."""
LABELLINGS = {"mds": "mds_interval", "partner": CHOSEN[1]}
"""The two labellings every application chapter edits by, identifier -> method: the paper's MDS (interval
rule) and the chosen method, both on the latents of the chosen dictionary
(`features.ExtractorsConfig.config(CHOSEN[0], seed)`)."""
LABELS = {**METHODS, "mds": "paper's MDS", "partner": METHODS[CHOSEN[1]]}
"""What the page shows for each method and labelling identifier."""
SHARE_CUTS = (1 / 3, 2 / 3)
"""Class boundaries on an image-share score: TxtD below 1/3, ImgD above 2/3 (the world's kinds)."""


def label(key: str) -> str:
    """The page's name for a method or labelling identifier (`LABELS`); anything else unchanged."""
    return LABELS.get(key, key)


def labelled(table: pd.DataFrame, columns=("method", "labelling")) -> pd.DataFrame:
    """A copy of `table` for the page: method and labelling identifiers replaced by their labels, in those
    columns and index levels."""
    out = table.copy()
    for col in columns:
        if col in out.columns:
            out[col] = out[col].map(label)
        if col in out.index.names:
            out = out.rename(index=label, level=col)
    return out


@dataclass(frozen=True)
class MethodConfig:
    """The choices the methods need, with the book's defaults; each field says which methods read it
    (every method reads `min_pairs`)."""

    band: float = 0.1
    """Cross-modal band of the paper's interval rule (chapter 3). Read by mds_interval."""
    k_std: float = 1.0
    """Thresholds at mean +- k_std standard deviations. Read by mds_std."""
    n_boot: int = 100
    """Bootstrap replicates of the interval rule. Read by both MDS methods."""
    min_pairs: int = 5
    """A unit firing on fewer pairs is rare and gets no class."""
    bimodal_low: float = 0.05
    """Energy score below which a latent is caption-only. Read by energy_bimodal, and by the concept methods
    and probe_partner to decide which latents are one-sided."""
    bimodal_high: float = 0.95
    """Energy score above which a latent is image-only (as `bimodal_low`)."""
    pair_floor: float = 0.1
    """A pair of latents joins into one concept when its pairing score exceeds this. Read by
    concept_coactivation and concept_bridge."""
    weighting: attribution.Weighting = "normalised energy"
    """How a concept's image share weighs its latents (`attribution.concept_scores`). Read by
    concept_coactivation and concept_bridge."""
    r2_floor: float = 0.05
    """A probe partner whose held-out R^2 is below this never fires (`attribution.fit_probe_partners`).
    This and the next three are read by probe_partner only."""
    plateau: float = 0.9
    """Quantile of a probe over its latent's firing pairs that sets its plateau."""
    fraction: float = 0.5
    """A probe partner fires above reference + fraction * (plateau - reference): 1/2 is the midpoint between
    what a silent other side predicts and what a side carrying the concept predicts."""
    reference: str = "prior"
    """The probe partner's low level: "prior" (its mean) or "absent" (`attribution.fit_probe_partners`)."""
    seed: int = 0
    """Seed of the bootstrap and of the probes' fitting half. Read by the MDS and probe-partner methods."""


@dataclass
class Attribution:
    """One method's reading of one feature set: per unit, its activations (for factor assignment), its score
    and its class; `concepts` is the pairing table for concept methods (None for latent methods)."""

    method: str
    acts_x: np.ndarray
    acts_y: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    concepts: pd.DataFrame | None = None
    partners: attribution.ProbePartners | None = None


def share_classes(scores: np.ndarray, firing: np.ndarray, min_pairs: int) -> np.ndarray:
    """ImgD / TxtD / CMD by the share cuts (1/3, 2/3); rare below min_pairs firing pairs, dead if never."""
    labels = np.full(len(scores), dominance.CMD, dtype=object)
    with np.errstate(invalid="ignore"):
        labels[scores > SHARE_CUTS[1]] = dominance.IMGD
        labels[scores < SHARE_CUTS[0]] = dominance.TXTD
    labels[firing < min_pairs] = dominance.RARE
    labels[(firing == 0) | ~np.isfinite(scores)] = dominance.DEAD
    return labels


def concept_acts(z: np.ndarray, concepts: pd.DataFrame) -> np.ndarray:
    """(n, concepts) activations of concepts: the sum of their latents' activations (one side's latent is
    silent on the other side, so this reads the image latent on images and the caption latent on captions)."""
    out = np.zeros((len(z), len(concepts)), dtype=np.float64)
    for col in ("image_latent", "text_latent"):
        idx = concepts[col].to_numpy(dtype=int)
        own = (idx >= 0) & ~((col == "text_latent") & (idx == concepts["image_latent"].to_numpy(dtype=int)))
        out[:, own] += z[:, idx[own]]
    return out


def _firing(ax: np.ndarray, ay: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    return ((ax > eps) | (ay > eps)).sum(0)


def attribute(method: str, zx, zy, decoder=None, opts: MethodConfig = MethodConfig(), x=None, y=None) -> Attribution:
    """Run one method on codes zx, zy (n, F) of n pairs; `decoder` (F, d) for the bridge methods, the
    embeddings x, y (n, d) for the probe partners."""
    if method not in METHODS:
        raise ValueError(f"Unknown attribution method {method!r}. Available: {list(METHODS)}")
    if method in NEEDS_DECODER and decoder is None:
        raise ValueError(f"{method!r} needs the feature set's decoder (F, d), e.g. sae.W_dec; this feature set has "
                         f"none, so leave the method out for it.")
    ax, ay = (np.asarray(a, np.float64) for a in (zx, zy))
    ax, ay = (np.maximum(a, 0) if (a < 0).any() else a for a in (ax, ay))
    zx, zy = torch.from_numpy(ax), torch.from_numpy(ay)  # shares memory: latent methods keep the caller's arrays
    firing = _firing(ax, ay)
    if method.startswith("mds"):
        stats = dominance.DominanceStats(zx.shape[1], n_boot=opts.n_boot, seed=opts.seed).update(zx, zy)
        rule = groundtruth.RULES[1] if method == "mds_interval" else groundtruth.RULES[0]
        labels = groundtruth.mds_labels(stats, opts.k_std, opts.band, opts.min_pairs)[rule]
        return Attribution(method, ax, ay, stats.scores(), labels)
    if method.startswith("energy"):
        mu = dominance.mds(zx, zy, "energy")
        if method == "energy_cuts":
            return Attribution(method, ax, ay, mu, share_classes(mu, firing, opts.min_pairs))
        labels = attribution.energy_classes(mu, opts.bimodal_low, opts.bimodal_high)
        labels[(firing < opts.min_pairs) & (firing > 0)] = dominance.RARE
        return Attribution(method, ax, ay, mu, labels)
    if method == "bridge":
        w = attribution.CrossCovariance(zx.shape[1]).update(zx, zy).matrix()
        mu_b = attribution.bridge_modality_score(attribution.bridge(w, decoder))
        return Attribution(method, ax, ay, mu_b, share_classes(mu_b, firing, opts.min_pairs))
    if method == "probe_partner":
        if x is None or y is None:
            raise ValueError("'probe_partner' needs the embeddings the codes came from: pass x= and y=.")
        partners = attribution.fit_probe_partners(ax, ay, x, y, opts.bimodal_low, opts.bimodal_high,
                                                  plateau=opts.plateau, fraction=opts.fraction,
                                                  r2_floor=opts.r2_floor, seed=opts.seed,
                                                  reference=opts.reference)
        scores = partners.shares(ax, ay, x, y)
        return Attribution(method, ax, ay, scores, share_classes(scores, firing, opts.min_pairs), partners=partners)
    pairing = "coactivation" if method == "concept_coactivation" else "bridge"
    mu = dominance.mds(zx, zy, "energy")
    classes = attribution.energy_classes(mu, opts.bimodal_low, opts.bimodal_high)
    classes[firing < opts.min_pairs] = dominance.RARE
    concepts = attribution.pair_latents(ax, ay, pairing, decoder=decoder, floor=opts.pair_floor, classes=classes)
    cx, cy = concept_acts(ax, concepts), concept_acts(ay, concepts)
    scores = attribution.concept_scores(ax, ay, concepts, opts.weighting)
    return Attribution(method, cx, cy, scores, share_classes(scores, _firing(cx, cy), opts.min_pairs), concepts)


CONDITIONS = ("method", "random partition", "side only", "shuffled pairing")
"""What a method's accuracy is set against: its classes shuffled among its classified units (class sizes
kept), the side-only baseline on the same units (`side_only`), and the method rerun on shuffled pairs."""
ONLY = {"vision-only": "ImgD, only", "language-only": "TxtD, only"}
"""The pure extremes (p = 0 or q = 0) are scored apart from the dominant kinds: they are easy, and pooled
with the dominant kinds they would flatter a method that reads only which side a unit fires on."""


def side_only(acts_x, acts_y, min_pairs: int = 5, cut: float = 0.05, eps: float = 1e-8) -> np.ndarray:
    """The baseline a method must beat: ImgD if a unit fires (almost) only on images, TxtD if (almost) only on
    captions, CMD if on both, from its firing counts (a side with at most `cut` of the firings is silent);
    rare below min_pairs firing pairs, dead if never. It reads which side of the gap a unit lives on and
    nothing else."""
    nx, ny = (np.asarray(acts_x) > eps).sum(0), (np.asarray(acts_y) > eps).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        img = nx / (nx + ny)
    labels = np.full(len(img), dominance.CMD, dtype=object)
    labels[img >= 1 - cut] = dominance.IMGD
    labels[img <= cut] = dominance.TXTD
    firing = ((np.asarray(acts_x) > eps) | (np.asarray(acts_y) > eps)).sum(0)
    labels[firing < min_pairs] = dominance.RARE
    labels[firing == 0] = dominance.DEAD
    return labels


def scored_class(units: pd.DataFrame) -> np.ndarray:
    """Each unit's row in the accuracy table: its expected class, or `ONLY`'s name for a pure extreme."""
    exp = units["expected"].to_numpy(dtype=object).copy()
    if "kind" in units:
        kind = units["kind"].to_numpy(dtype=object)
        for k, name in ONLY.items():
            exp[(kind == k) & pd.notna(exp)] = name
    return exp


def unit_counts(tables) -> pd.DataFrame:
    """What the units of one method encode, over several seeds' unit tables (`Result.units`): per row of the
    accuracy table (`scored_class`), the units in all, per seed and in the seed with fewest, how many are
    conjunctions, how many are read on images per seed (the rest are read on captions), how many factors
    they encode (conjunctions count both; over all seeds and in the seed with fewest), and how many a
    single-factor reading would class otherwise (`moved`)."""
    u = pd.concat([t.assign(row=scored_class(t), table=k) for k, t in enumerate(tables)], ignore_index=True)
    u = u[u.row.notna()]
    rows = list(dominance.CLASSES) + [r for r in ONLY.values() if (u.row == r).any()]
    g = u.groupby("row")
    by_table = u.groupby(["row", "table"])
    seeds = lambda s: s.unstack(fill_value=0).reindex(columns=range(len(tables)), fill_value=0).min(1)
    factors = lambda f: len({name for t in f for name in t})
    out = pd.DataFrame({
        "units": g.size(), "units per seed": g.size() / len(tables), "fewest in a seed": seeds(by_table.size()),
        "conjunctions": g.conjunction.apply(lambda c: int(c.notna().sum())),
        "on images per seed": g.side.apply(lambda side: (side == "image").sum() / len(tables)),
        "factors": g.factors.apply(factors),
        "fewest factors in a seed": seeds(by_table.factors.apply(factors)),
        "moved": g.apply(lambda t: int((t.single.astype(object) != t.expected.astype(object)).sum()),
                         include_groups=False)})
    return out.reindex(rows).fillna(0).rename_axis("expected")


def hits(units: pd.DataFrame, condition: str = "method", n_perm: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Score units from any ground truth: `units` has per unit its `expected` class (None: encodes nothing),
    the method's `predicted` class and, for the side-only baseline, a `side only` class (`side_only`); a
    `kind` column sets the pure extremes apart (`ONLY`). Returns per unit with an expected class: the row it
    counts in (`expected`), whether the method classed it (`classified`) and, where it did, whether the
    class is right (`hit`; for "random partition" the probability of agreeing with the classes shuffled
    among all classified units; for "side only" the baseline's class on the same units)."""
    if condition not in CONDITIONS[:3]:
        raise ValueError(f"Unknown condition {condition!r}; use one of {list(CONDITIONS[:3])} (for 'shuffled "
                         "pairing', score the units of the method rerun on shuffled pairs).")
    pred, exp = units["predicted"].to_numpy(dtype=object), scored_class(units)
    truth = units["expected"].to_numpy(dtype=object)
    has = pd.notna(exp)
    keep = has & np.isin(pred, dominance.CLASSES)
    hit = np.full(len(units), np.nan)
    if condition == "random partition":
        hit[keep] = groundtruth._shuffled_hits(pred, truth, n_perm, seed).mean(0)  # units in `keep` order
    elif condition == "side only":
        if "side only" not in units:
            raise ValueError("The side-only baseline needs a 'side only' column: label the units with "
                             "comparison.side_only(acts_x, acts_y).")
        hit[keep] = units["side only"].to_numpy(dtype=object)[keep] == truth[keep]
    else:
        hit[keep] = pred[keep] == truth[keep]
    return pd.DataFrame({"expected": exp[has], "classified": keep[has], "hit": hit[has]})


@dataclass
class Result:
    """One method on one feature set: each unit's assignment, its class on true pairs and on shuffled pairs."""

    method: str
    units: pd.DataFrame
    """Per unit: what it encodes (`groundtruth.assign_factors`), its predicted class and dominance score,
    and the side-only baseline's class."""
    shuffled: pd.DataFrame
    """The same for the units found after shuffling the captions across pairs."""
    attribution: Attribution
    """The method's reading of the true pairs (units, scores, concept pairings), for sweeps."""

    def hits(self, condition: str = "method", n_perm: int = 1000, seed: int = 0) -> pd.DataFrame:
        """`hits` of this result's units (of the shuffled-pair rerun for "shuffled pairing")."""
        if condition == "shuffled pairing":
            return hits(self.shuffled, "method")
        return hits(self.units, condition, n_perm, seed)


def _assign(acts_x, acts_y, factors_x, factors_y, cfg, floor, score, memo: dict | None) -> pd.DataFrame:
    """`groundtruth.assign_factors`, remembered in `memo` for activations it has seen (latent methods share
    their units, so one assignment serves them all)."""
    key = (id(acts_x), id(acts_y), id(factors_y), floor, score)
    if memo is not None and key in memo:
        return memo[key][2].copy()
    units = groundtruth.assign_factors(acts_x, acts_y, factors_x, score=score, floor=floor, cfg=cfg,
                                       factors_y=factors_y)
    if memo is not None:
        memo[key] = (acts_x, acts_y, units)  # keeps the arrays alive, so their ids stay unique
    return units.copy()


def _units(att: Attribution, factors_x: pd.DataFrame, factors_y: pd.DataFrame, cfg: world.WorldConfig,
           floor: float | None, score: str, memo: dict | None = None, min_pairs: int = 5) -> pd.DataFrame:
    units = _assign(att.acts_x, att.acts_y, factors_x, factors_y, cfg, floor, score, memo)
    units["predicted"] = att.labels
    units["dominance"] = att.scores
    units["side only"] = side_only(att.acts_x, att.acts_y, min_pairs)
    return units


def check(method: str, zx, zy, factors: pd.DataFrame, decoder=None, opts: MethodConfig = MethodConfig(),
          cfg: world.WorldConfig | None = None, floor: float | None = None, score: str = "eta2",
          x=None, y=None) -> Result:
    """Run `method` on true and on shuffled pairs and read what each unit encodes (see the module docstring);
    `score` and `floor` choose how (`groundtruth.assign_factors`); x, y are the embeddings (probe partners)."""
    return check_all([method], zx, zy, factors, decoder, opts, cfg, floor, score, x, y)[method]


def check_all(methods, zx, zy, factors: pd.DataFrame, decoder=None, opts: MethodConfig = MethodConfig(),
              cfg: world.WorldConfig | None = None, floor: float | None = None, score: str = "eta2",
              x=None, y=None) -> dict[str, Result]:
    """`check` for several methods on one feature set; methods that need a decoder are skipped when there is
    none, and latent-level methods share one factor assignment."""
    cfg = cfg or world.WorldConfig()
    zx, zy = np.asarray(zx, dtype=np.float64), np.asarray(zy, dtype=np.float64)
    perm = np.random.default_rng(opts.seed).permutation(len(zy))
    y_shuf = None if y is None else np.asarray(y)[perm]
    zy_shuf = zy[perm]
    shuffled_factors = factors.iloc[perm].reset_index(drop=True)
    memo, out = {}, {}
    for method in methods:
        if method in NEEDS_DECODER and decoder is None and len(methods) > 1:
            continue
        true = attribute(method, zx, zy, decoder, opts, x, y)
        shuf = attribute(method, zx, zy_shuf, decoder, opts, x, y_shuf)
        out[method] = Result(method, _units(true, factors, factors, cfg, floor, score, memo, opts.min_pairs),
                             _units(shuf, factors, shuffled_factors, cfg, floor, score, memo, opts.min_pairs),
                             true)
    return out


def accuracy_table(results: dict, n_perm: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Accuracy per (tool, method, condition, expected class) with 95% intervals over seeds, and coverage.

    `results` maps (tool, method, seed) to a `Result`, or to a units table from any ground truth (`hits`; no
    shuffled-pairing row then). Seeds of one (tool, method) are the replicates of `stats.seed_interval`.
    Rows: the three classes of the dominant kinds, "all" (those three together) and the pure extremes
    (`ONLY`). `coverage` is the share of the units of a row that the method classes at all (units it calls
    rare or dead, or concept methods leave out, count against it); accuracy is over the classified ones.
    """
    from mdsgap import stats

    groups: dict[tuple, list] = {}
    for (tool, method, s), r in results.items():
        conditions = CONDITIONS if isinstance(r, Result) else CONDITIONS[:3]
        units = r.units if isinstance(r, Result) else r
        if "side only" not in units:
            conditions = tuple(c for c in conditions if c != "side only")
        for condition in conditions:
            h = r.hits(condition, n_perm, seed) if isinstance(r, Result) else hits(r, condition, n_perm, seed)
            for cls in dominance.CLASSES + ("all",) + tuple(ONLY.values()):
                sel = h[h.expected.isin(dominance.CLASSES)] if cls == "all" else h[h.expected == cls]
                groups.setdefault((tool, method, condition, cls), []).append(sel)
    rows = []
    for (tool, method, condition, cls), g in groups.items():
        mean, lo, hi = stats.seed_interval([h.hit.dropna().to_numpy() for h in g])
        cover = [h.classified.mean() for h in g if len(h)]
        rows.append({"tool": tool, "method": method, "condition": condition, "expected": cls, "value": mean,
                     "low": lo, "high": hi, "coverage": float(np.mean(cover)) if cover else np.nan,
                     "units": float(np.mean([h.classified.sum() for h in g])), "seeds": len(g)})
    return pd.DataFrame(rows)


SWEEPABLE = ("mds_interval", "energy_cuts", "concept_coactivation", "concept_bridge", "probe_partner")
"""One method per score whose value (q, p) predicts (the two MDS rules share a score, as do the two energy
rules); μ_B reads a latent's role in a bridge, which (q, p) does not set (1/2 for a latent that fires on both
sides, 1 or 0 for the two ends of a split pair)."""


def ideal(method: str, q, p) -> np.ndarray:
    """The score an ideal detector of a factor shown with probability q and named with probability p gets: the
    per-pair MDS of Yan et al. averages shares over firing pairs (`attribution.ideal_ratio_mds`); every other
    sweepable score is an energy or frequency share, q / (q + p) (`world.ideal_share`)."""
    if method == "bridge" or method not in METHODS:
        raise ValueError(f"{method!r} has no ideal curve in (q, p). Sweepable: {list(SWEEPABLE)}")
    if method.startswith("mds"):
        return attribution.ideal_ratio_mds(q, p)
    return world.ideal_share(q, p)


def rescore(att: Attribution, zx, zy, opts: MethodConfig = MethodConfig(), x=None, y=None) -> np.ndarray:
    """The method's score of the same units on other pairs (a sweep point): latents, concept pairings and
    probe partners stay as `att` found them on the default world."""
    zx = torch.as_tensor(np.asarray(zx, dtype=np.float64)).clamp_min(0)
    zy = torch.as_tensor(np.asarray(zy, dtype=np.float64)).clamp_min(0)
    if att.method.startswith("mds"):
        return dominance.mds(zx, zy, "ratio")
    if att.method.startswith("energy"):
        return dominance.mds(zx, zy, "energy")
    if att.concepts is not None:
        return attribution.concept_scores(zx.numpy(), zy.numpy(), att.concepts, opts.weighting)
    if att.partners is not None:
        return att.partners.shares(zx.numpy(), zy.numpy(), x, y)
    raise ValueError(f"{att.method!r} cannot be rescored on a sweep. Sweepable: {list(SWEEPABLE)}")


def sweep_fit(table: pd.DataFrame) -> pd.DataFrame:
    """Slope and intercept of measured against ideal dominance, with 95% intervals over seeds: two rows
    (column quantity) in the book's layout (value, low, high).

    `table` has one row per (seed, unit, point): columns seed, unit, ideal, measured. Each seed's line goes
    through its mean over units at each point; the estimate is the mean of the seeds' lines and the interval
    `stats.interval` over them (a perfect method has slope 1 and intercept 0).
    """
    from mdsgap import stats

    table = table.astype({"ideal": float, "measured": float}).dropna(subset=["measured"])
    lines = []
    for _, t in table.groupby("seed"):
        means = t.groupby("ideal").measured.mean()
        if len(means) > 1:
            lines.append(np.polyfit(means.index.to_numpy(), means.to_numpy(), 1))
    lines = np.array(lines).reshape(-1, 2)
    return pd.DataFrame([{"quantity": name, **dict(zip(stats.COLUMNS, stats.interval(values)))}
                         for name, values in (("slope", lines[:, 0]), ("intercept", lines[:, 1]))])


def sweep_rows(result: Result, points, swept: tuple[str, ...], seed: int = 0,
               opts: MethodConfig = MethodConfig()) -> pd.DataFrame:
    """Measured and ideal dominance of the units that encode a swept factor (alone or in a conjunction), at
    every sweep point.

    `points` is a list of (world config, zx, zy, x, y): codes and embeddings of fresh pairs of a world whose q
    or p was changed. The units (and concept pairings) are those `result` found on the default world; a
    unit's (q, p) at a point is its concept's (`groundtruth.unit_share`). One row per (point, unit) with a
    score: seed, unit, factor, q, p, ideal, measured.
    """
    u = result.units
    chosen = [i for i in u.index[u.expected.notna()] if set(u.loc[i, "factors"]) & set(swept)]
    rows = []
    for cfg, zx, zy, x, y in points:
        measured = rescore(result.attribution, zx, zy, opts, x, y)
        for unit in chosen:
            q, p = groundtruth.unit_share(cfg, u.loc[unit, "factors"])
            rows.append({"seed": seed, "unit": int(unit), "factor": u.loc[unit, "factor"], "q": q, "p": p,
                         "ideal": float(ideal(result.method, q, p)), "measured": measured[unit]})
    return pd.DataFrame(rows, columns=["seed", "unit", "factor", "q", "p", "ideal", "measured"])


def sweep_table(results: dict, sets: dict, swept: dict, opts: MethodConfig = MethodConfig()) -> pd.DataFrame:
    """`sweep_rows` of every sweepable (tool, method, seed) in `results`, for the feature sets `sets`
    ((tool, seed) -> `features.FeatureSet`) on the sweep points `swept` (axis -> (points of (world config,
    image embeddings, caption embeddings), swept factors)); columns tool, method and axis added."""
    from mdsgap import features

    rows = []
    for (tool, s), fs in sets.items():
        for axis, (pts, factors) in swept.items():
            coded = [(cfg, *features.encode_pairs(fs, sx, sy), np.asarray(sx), np.asarray(sy))
                     for cfg, sx, sy in pts]
            for method in [m for m in SWEEPABLE if (tool, m, s) in results]:
                part = sweep_rows(results[(tool, method, s)], coded, factors, seed=s, opts=opts)
                rows.append(part.assign(tool=tool, method=method, axis=axis))
    return pd.concat(rows, ignore_index=True)


def ranking(acc: pd.DataFrame) -> pd.DataFrame:
    """Methods ranked by their worst class (accuracy per expected class on true pairs), then by the mean;
    with each method's coverage of the dominant kinds' units."""
    d = acc[(acc.condition == "method") & acc.expected.isin(dominance.CLASSES)]
    wide = d.pivot_table(index=["tool", "method"], columns="expected", values="value")
    wide = wide.reindex(columns=list(dominance.CLASSES))
    wide["worst class"] = wide[list(dominance.CLASSES)].min(1, skipna=False)
    wide["mean"] = wide[list(dominance.CLASSES)].mean(1, skipna=False)
    cover = acc[(acc.condition == "method") & (acc.expected == "all")].set_index(["tool", "method"]).coverage
    wide["coverage"] = cover.reindex(wide.index)
    wide.columns.name = None
    return wide.sort_values(["worst class", "mean"], ascending=False).reset_index()


def meets_target(acc: pd.DataFrame, tool: str, method: str, fits: pd.DataFrame | None = None,
                 level: float = 0.8, coverage: float = 0.8, slope_tol: float = 0.1) -> dict:
    """Whether one method meets the target of the ground-truth check (issue 19): accuracy at least `level` on
    every class of the dominant kinds with the interval's lower end above both the random partition and the
    side-only baseline, coverage at least `coverage`, and, when `fits` (`sweep_fits`) is given, a slope
    within `slope_tol` of 1 on both sweeps. `short` lists what falls short: classes, "coverage", or the
    sweep axes ("p": naming, "q": showing)."""
    a = acc.set_index(["tool", "method", "condition", "expected"])
    short = []
    for cls in dominance.CLASSES:
        r = a.loc[(tool, method, "method", cls)]
        bars = [a.loc[(tool, method, c, cls)].value for c in ("random partition", "side only")
                if (tool, method, c, cls) in a.index]
        if not (r.value >= level and all(r.low > b for b in bars)):
            short.append(cls)
    if not a.loc[(tool, method, "method", "all")].coverage >= coverage:
        short.append("coverage")
    slopes_ok = True
    if fits is not None:
        f = fits[fits.quantity == "slope"].set_index(["tool", "method", "axis"])
        for axis in ("p", "q"):
            key = (tool, method, axis)
            if key not in f.index or not abs(f.loc[key].value - 1) <= slope_tol:
                short.append(axis)
                slopes_ok = False
    return {"met": not short, "short": short, "slopes_ok": slopes_ok}


def accuracy_summary(acc: pd.DataFrame) -> pd.DataFrame:
    """One row per (tool, method): per expected class the accuracy with its 95% interval, and the controls
    (random partition, side only, shuffled pairing), as strings for a table in the book."""
    a = acc.set_index(["tool", "method", "condition", "expected"])
    rows = []
    for tool, method in acc[["tool", "method"]].drop_duplicates().itertuples(index=False):
        row = {"tool": tool, "method": method}
        for cls in dominance.CLASSES:
            r = a.loc[(tool, method, "method", cls)]
            row[f"{cls}"] = "—" if np.isnan(r.value) else f"{r.value:.2f} [{r.low:.2f}, {r.high:.2f}]"
            for cond, short in (("random partition", "random"), ("side only", "side"),
                                ("shuffled pairing", "shuffled")):
                v = a.loc[(tool, method, cond, cls)].value if (tool, method, cond, cls) in a.index else np.nan
                row[f"{cls} {short}"] = "—" if np.isnan(v) else f"{v:.2f}"
        row["coverage"] = f"{a.loc[(tool, method, 'method', 'all')].coverage:.2f}"
        rows.append(row)
    return pd.DataFrame(rows)


def misses(results: dict[tuple, Result], tool: str, method: str, expected: str) -> pd.DataFrame:
    """Where one method's units of an expected class go, over seeds: per concept (a factor, or two for a
    conjunction), the count of units, the share predicted as each class, their mean score (the method's
    dominance value) and their mean ideal share."""
    parts = [r.units.assign(seed=s) for (t, m, s), r in results.items() if t == tool and m == method]
    if not parts:
        raise ValueError(f"No results for {method!r} on {tool!r}.")
    u = pd.concat(parts, ignore_index=True)
    u = u[(scored_class(u) == expected) & u.predicted.isin(dominance.CLASSES)]
    concept = u.factors.map(" & ".join).rename("encodes")
    shares = pd.crosstab(concept, u.predicted, normalize="index")
    shares = shares.reindex(columns=list(dominance.CLASSES), fill_value=0.0)
    g = u.groupby(concept)
    out = shares.assign(units=g.size(), score=g["dominance"].mean(), ideal=g["share"].mean())
    return out[["units", *dominance.CLASSES, "score", "ideal"]]


def cmd_shares(results: dict[tuple, Result], tools) -> pd.DataFrame:
    """Share of classified units classed CMD on true and on shuffled pairs, per (tool, method), over seeds."""
    rows = []
    for (tool, method, s), r in results.items():
        if tool not in tools:
            continue
        for cond, t in (("true pairs", r.units), ("shuffled pairs", r.shuffled)):
            classified = t.predicted.isin(dominance.CLASSES)
            rows.append({"tool": tool, "method": method, "pairs": cond,
                         "CMD share": float((t.predicted[classified] == dominance.CMD).mean())})
    d = pd.DataFrame(rows).groupby(["tool", "method", "pairs"], sort=False)["CMD share"].mean()
    return d.unstack("pairs")[["true pairs", "shuffled pairs"]]


def pair_aware(shares: pd.DataFrame, drop: float = 0.5) -> pd.Series:
    """Per method, the tools on which its CMD share on shuffled pairs is at most (1 - drop) of that on true
    pairs (a list, empty when none)."""
    ok = (shares["shuffled pairs"] <= (1 - drop) * shares["true pairs"]) & (shares["true pairs"] > 0)
    return ok.groupby(level="method", sort=False).apply(lambda o: [t for (t, _), v in o.items() if v])


def sweep_fits(sweep: pd.DataFrame) -> pd.DataFrame:
    """`sweep_fit` for every (tool, method, axis) of a sweep table: columns tool, method, axis, quantity,
    value, low, high."""
    from mdsgap import stats

    keys = ["tool", "method", "axis"]
    parts = [sweep_fit(d).assign(**dict(zip(keys, key))) for key, d in sweep.groupby(keys, sort=False)]
    columns = [*keys, "quantity", *stats.COLUMNS]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def sensitivity(codes: dict, keys, factors: pd.DataFrame, x, y, opts: MethodConfig, floor: float | None,
                grid=((0.75, 0.5, "prior"), (0.9, 0.5, "prior"), (0.97, 0.5, "prior"), (0.9, 0.35, "prior"),
                      (0.9, 0.65, "prior"), (0.9, 0.5, "absent"))) -> pd.DataFrame:
    """Accuracy per expected class of the probe partners for each (plateau quantile, fraction, reference) of
    `grid`, for the feature sets `keys` ((tool, seed) into `codes`, which maps them to (zx, zy))."""
    import dataclasses

    rows, memo = [], {}
    for key in keys:
        zx, zy = (np.asarray(a, np.float64) for a in codes[key])
        for pl, fr, ref in grid:
            o = dataclasses.replace(opts, plateau=pl, fraction=fr, reference=ref)
            att = attribute("probe_partner", zx, zy, None, o, x, y)
            u = _units(att, factors, factors, world.WorldConfig(), floor, "eta2", memo, opts.min_pairs)
            h = hits(u).dropna()
            acc = h.hit.groupby(h.expected).mean()
            rows.append({"tool": key[0], "seed": key[1], "plateau": pl, "fraction": fr, "reference": ref,
                         **{cls: acc.get(cls, np.nan) for cls in dominance.CLASSES}})
    return pd.DataFrame(rows)
