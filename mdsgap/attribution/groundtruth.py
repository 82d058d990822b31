"""Checking modality classes against the world's ground truth.

In the world every factor's presence in each modality is known (shown with probability q, named with
probability p), so every feature that encodes a factor has an expected class: a cross-modal factor should
give a cross-modal feature (CMD), a vision-dominant or vision-only one a vision-dominant feature (ImgD), a
language-dominant or language-only one a language-dominant feature (TxtD).

A feature is assigned the factor that explains most of its activation, read on a side where the factor is
present (images that show it, captions that name it; the better side when both can). The default score is
the correlation ratio eta^2 (the share of the activation's variance explained by the factor's value); the
best one-vs-rest AUROC over factor values is the alternative. Most sparse latents fire for a conjunction of
two factor values (a red *and* large object), and a conjunction's modality is not its best factor's: it is
in the caption only when both values are named. `assign_factors` reads a unit as a conjunction where the
pair's indicator clearly explains more than one factor, with its expected share from the product of the
factors' presence probabilities. Features below a floor encode nothing and get no expected class.

The mention probability gives a continuous ground truth too: `attribution.ideal_ratio_mds`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from mdsgap import world
from mdsgap.attribution import dominance

EXPECTED = {"cross-modal": dominance.CMD, "vision-dominant": dominance.IMGD, "vision-only": dominance.IMGD,
            "language-dominant": dominance.TXTD, "language-only": dominance.TXTD}
SIDES = {"image": "shown", "text": "mentioned"}


def auroc_matrix(acts: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AUROC of every feature (columns of acts, (n, F)) for every binary target (columns of positive, (n, T)).

    Rank-based (Mann-Whitney) with average ranks for ties, which matter here: most activations are 0.
    Returns (F, T); NaN where a target has no positives or no negatives.
    """
    ranks = rankdata(acts, axis=0, method="average")  # (n, F)
    pos = positive.astype(np.float64)
    n_pos = pos.sum(0)
    n_neg = len(pos) - n_pos
    rank_sum = ranks.T @ pos  # (F, T)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    auc[:, (n_pos == 0) | (n_neg == 0)] = np.nan
    return auc


def eta_squared(acts: np.ndarray, values: np.ndarray, min_support: int = 20) -> np.ndarray:
    """Correlation ratio of every feature (columns of acts, (n, F)) with a categorical variable (n,).

    eta^2 = sum_v n_v (mean_v - mean)^2 / sum_i (a_i - mean)^2, in [0, 1]. NaN for a feature that fires
    (activation > 0) on fewer than `min_support` samples, where the ratio would be noise.
    """
    acts = np.asarray(acts, dtype=np.float64)
    mean = acts.mean(0)
    total = ((acts - mean) ** 2).sum(0)
    between = np.zeros(acts.shape[1])
    for v in np.unique(values):
        rows = values == v
        between += rows.sum() * (acts[rows].mean(0) - mean) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        out = between / total
    out[((acts > 0).sum(0) < min_support) | (total == 0)] = np.nan
    return out


def factor_embedding(factors: pd.DataFrame) -> np.ndarray:
    """Ground-truth embedding of the images (first n rows) and the captions (next n): one-hot factor values.

    An image carries the factors it shows; a caption the factors it names. The cosine of two rows is the
    share of factor values they have in common, an independent space in which to judge whether a feature's
    top samples are alike.
    """
    blocks_img, blocks_txt = [], []
    for f in world.FACTORS:
        onehot = np.stack([(factors[f.name].astype(str) == v).to_numpy() for v in f.values], 1).astype(np.float32)
        blocks_img.append(onehot * factors[f"shown_{f.name}"].to_numpy(dtype=bool)[:, None])
        blocks_txt.append(onehot * factors[f"mentioned_{f.name}"].to_numpy(dtype=bool)[:, None])
    return np.concatenate([np.concatenate(blocks_img, 1), np.concatenate(blocks_txt, 1)])


def _side_scores(acts: np.ndarray, factors: pd.DataFrame, side: str, score: str, min_support: int) -> np.ndarray:
    """(F, n_factors) score of each feature for each factor on one side, read only on the samples where
    that side carries the factor (NaN where it never does); the best value for AUROC."""
    present = {f.name: factors[f"{SIDES[side]}_{f.name}"].to_numpy(dtype=bool) for f in world.FACTORS}
    out = np.full((acts.shape[1], len(world.FACTORS)), np.nan)
    for j, f in enumerate(world.FACTORS):
        rows = present[f.name]
        if rows.sum() < 2:
            continue
        values = factors[f.name].astype(str).to_numpy()[rows]
        a = acts[rows]
        if score == "eta2":
            out[:, j] = eta_squared(a, values, min_support)
        elif score == "auroc":
            targets = np.stack([values == v for v in f.values], 1)
            auc = np.nan_to_num(auroc_matrix(a, targets), nan=-np.inf).max(1)
            auc[~np.isfinite(auc) | ((a > 0).sum(0) < min_support)] = np.nan
            out[:, j] = auc
        else:
            raise ValueError(f"Unknown factor score {score!r}; use 'eta2' or 'auroc'.")
    return out


FLOORS = {"eta2": 0.3, "auroc": 0.75}
CONJUNCTION_MARGIN = 0.1
"""A unit is read as a conjunction of two factor values when the indicator of both explains at least this
much more of its variance (r^2) than its best single factor does (eta^2)."""


def unit_share(cfg: world.WorldConfig, factors) -> tuple[float, float]:
    """(q, p) of a unit's concept: the product over its factors of how often the image shows and the caption
    names each. A conjunction is in the image only when both factors are shown and in the caption only when
    both are named; presence is drawn independently per factor, so the products are exact."""
    return float(np.prod([cfg.q(f) for f in factors])), float(np.prod([cfg.p(f) for f in factors]))


_DESIGNS: dict = {}


def _design(factors: pd.DataFrame, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """For every pair of two different factors: where this side carries both (n, pairs), the indicator of
    each pair of their values there (n, cells), each cell's pair, and the cells as ((f1, v1), (f2, v2)).
    Remembered for the last four factor tables (a chapter assigns many feature sets on the same pairs; a
    table must not be changed in place after its first use)."""
    key = (id(factors), side)
    if key in _DESIGNS and _DESIGNS[key][0] is factors:
        return _DESIGNS[key][1]
    present = {f.name: factors[f"{SIDES[side]}_{f.name}"].to_numpy(dtype=bool) for f in world.FACTORS}
    values = {f.name: factors[f.name].astype(str).to_numpy() for f in world.FACTORS}
    masks, ind, owner, cells = [], [], [], []
    for a, fa in enumerate(world.FACTORS):
        for fb in world.FACTORS[a + 1:]:
            rows = present[fa.name] & present[fb.name]
            for va in fa.values:
                for vb in fb.values:
                    ind.append(rows & (values[fa.name] == va) & (values[fb.name] == vb))
                    owner.append(len(masks))
                    cells.append(((fa.name, va), (fb.name, vb)))
            masks.append(rows)
    out = (np.stack(masks, 1).astype(np.float32), np.stack(ind, 1).astype(np.float32), np.array(owner), cells)
    if len(_DESIGNS) >= 4:  # a chapter's own pairs and the shuffled copies of its latest checks
        _DESIGNS.pop(next(iter(_DESIGNS)))
    _DESIGNS[key] = (factors, out)
    return out


def _conjunction_scores(acts: np.ndarray, factors: pd.DataFrame, side: str,
                        min_support: int) -> tuple[np.ndarray, list]:
    """(F, cells) r^2 of each unit with the indicator of every pair of values of two different factors, read
    on the samples where this side carries both factors; and the cells as ((f1, v1), (f2, v2)).

    NaN where the unit fires on fewer than `min_support` of those samples or a cell has fewer samples."""
    acts = np.asarray(acts, dtype=np.float64)
    masks, ind, owner, cells = _design(factors, side)
    m = masks.sum(0)[owner]                                      # samples behind each cell's pair
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (acts.T @ masks)[:, owner] / m
        var = (acts.T ** 2 @ masks)[:, owner] / m - mean**2
        share = ind.sum(0) / m
        cov = (acts.T @ ind) / m - mean * share
        r2 = cov**2 / (var * share * (1 - share))
    fired = ((acts > 0).T.astype(np.float64) @ masks)[:, owner]
    n_cell = ind.sum(0)
    r2[:, (n_cell < min_support) | (m - n_cell < min_support) | (m < 2 * min_support)] = np.nan
    r2[(fired < min_support) | ~(var > 1e-12)] = np.nan
    return r2, cells


def assign_factors(acts_x: np.ndarray, acts_y: np.ndarray, factors: pd.DataFrame, score: str = "eta2",
                   floor: float | None = None, min_support: int = 20,
                   cfg: world.WorldConfig | None = None, factors_y: pd.DataFrame | None = None,
                   conjunctions: bool = True, margin: float = CONJUNCTION_MARGIN) -> pd.DataFrame:
    """For every unit: what it encodes, the side it was read on, the score, its concept's (q, p) and image
    share in the world `cfg` (default: the default world), its kind and expected class (None below `floor`,
    by default FLOORS[score]). `factors_y` describes the captions when they are not the images' own
    (shuffled pairs); by default both sides are described by `factors`.

    A unit encodes its best single factor (eta^2 or AUROC, read where a side carries it), unless, with
    `conjunctions` (eta^2 only), the indicator of two values of two factors explains at least `margin` more
    of its variance: then it encodes that conjunction (`conjunction` names it, `factors` holds both; `factor`
    is the one it explains better alone), with q and p the products of its factors' (`unit_share`). A red-and-large
    latent is then expected ImgD (q = 1, p = 1/4), where its best factor alone, colour, says CMD.
    `single` keeps the expected class from the best single factor.
    """
    floor = FLOORS.get(score) if floor is None else floor
    cfg = cfg or world.WorldConfig()
    fy = factors if factors_y is None else factors_y
    img = np.nan_to_num(_side_scores(acts_x, factors, "image", score, min_support), nan=-np.inf)
    txt = np.nan_to_num(_side_scores(acts_y, fy, "text", score, min_support), nan=-np.inf)
    combined = np.maximum(img, txt)
    best = combined.argmax(1)
    best_single = combined[np.arange(len(best)), best]
    conj = np.full(len(best), -np.inf)
    if conjunctions and score == "eta2":
        cx, cells = _conjunction_scores(acts_x, factors, "image", min_support)
        cy, _ = _conjunction_scores(acts_y, fy, "text", min_support)
        both = np.nan_to_num(np.maximum(np.nan_to_num(cx, nan=-np.inf), np.nan_to_num(cy, nan=-np.inf)),
                             nan=-np.inf)
        if both.shape[1]:
            cell = both.argmax(1)
            conj = both[np.arange(len(cell)), cell]
            conj_side = np.where(np.nan_to_num(cy, nan=-np.inf)[np.arange(len(cell)), cell] >
                                 np.nan_to_num(cx, nan=-np.inf)[np.arange(len(cell)), cell], "text", "image")
    rows = []
    for d, j in enumerate(best):
        f, value = world.FACTORS[j], best_single[d]
        row = {"feature": d, "factor": None, "factors": (), "conjunction": None, "side": None, "score": np.nan,
               "q": np.nan, "p": np.nan, "share": np.nan, "kind": None, "expected": None, "single": None}
        if np.isfinite(value):
            q, p = unit_share(cfg, [f.name])
            row.update(factor=f.name, factors=(f.name,), side=("image", "text")[int(txt[d, j] > img[d, j])], score=float(value),
                       q=q, p=p, kind=world.kind_of(q, p))
            row["single"] = EXPECTED[row["kind"]] if value >= floor else None
        if np.isfinite(conj[d]) and conj[d] >= max(value, -1.0) + margin:
            (fa, va), (fb, vb) = cells[cell[d]]
            scores = {fa: combined[d, _INDEX[fa]], fb: combined[d, _INDEX[fb]]}
            q, p = unit_share(cfg, [fa, fb])
            row.update(factor=max(scores, key=scores.get), factors=(fa, fb), conjunction=f"{fa} = {va} & {fb} = {vb}",
                       side=str(conj_side[d]), score=float(conj[d]), q=q, p=p, kind=world.kind_of(q, p))
        if row["kind"] is not None:
            row["share"] = world.ideal_share(row["q"], row["p"])
            row["expected"] = EXPECTED[row["kind"]] if row["score"] >= floor else None
        rows.append(row)
    return pd.DataFrame(rows).set_index("feature")


_INDEX = {f.name: j for j, f in enumerate(world.FACTORS)}


def silent_firing(fires_x: np.ndarray, fires_y: np.ndarray, units: pd.DataFrame, factors: pd.DataFrame,
                  min_pairs: int = 20) -> pd.Series:
    """Per unit that encodes something (`assign_factors`), how often it fires on a caption that does not carry
    its concept: among the pairs where it fires on the image and the caption leaves at least one of its
    factors unnamed, the share where it fires on the caption too (NaN below `min_pairs` such pairs).

    `fires_x`, `fires_y` (n, F) booleans say where each unit fires on the images and the captions (a unit's
    codes, or a method's reading such as a probe partner). An honest caption side is silent there (0); a
    dictionary or a partner that pulls the caption toward what the image predicts fires (the leak of a
    conditional mean)."""
    out = pd.Series(np.nan, index=units.index, dtype=float)
    for unit in units.index[units.expected.notna()]:
        named = np.ones(len(factors), dtype=bool)
        for f in units.loc[unit, "factors"]:
            named &= factors[f"mentioned_{f}"].to_numpy(dtype=bool)
        rows = fires_x[:, unit] & ~named
        if rows.sum() >= min_pairs:
            out[unit] = float(fires_y[rows, unit].mean())
    return out


def partner_carries(partner_fires: np.ndarray, units: pd.DataFrame, factors: pd.DataFrame,
                    side: np.ndarray) -> pd.DataFrame:
    """Where the partners of conjunction units fire: for every conjunction unit whose own side is `side`
    ("image" or "text", e.g. `ProbePartners.side`), the share of its partner's firings on the other side
    (`partner_fires`, (n, F) booleans there) that carry both of its values, one of them only, or neither
    (carry: shown on images, named on captions). A partner that reads the conjunction fires on "both";
    one that reads a sum of its two values fires on "one" too."""
    rows = []
    for unit in units.index[units.conjunction.notna() & units.expected.notna()]:
        own = side[unit]
        if own not in ("image", "text") or not partner_fires[:, unit].any():
            continue
        if units.loc[unit, "p" if own == "image" else "q"] == 0:
            continue  # the other side never carries both values (the outline, the template)
        verb = "mentioned" if own == "image" else "shown"  # the partner lives on the other side
        (fa, va), (fb, vb) = (part.split(" = ") for part in units.loc[unit, "conjunction"].split(" & "))
        has = [(factors[f].astype(str).to_numpy() == v) & factors[f"{verb}_{f}"].to_numpy(dtype=bool)
               for f, v in ((fa, va), (fb, vb))]
        count = has[0].astype(int) + has[1].astype(int)
        fired = count[partner_fires[:, unit]]
        rows.append({"unit": unit, "conjunction": units.loc[unit, "conjunction"], "firings": len(fired),
                     "both": float((fired == 2).mean()), "one": float((fired == 1).mean()),
                     "neither": float((fired == 0).mean())})
    return pd.DataFrame(rows, columns=["unit", "conjunction", "firings", "both", "one", "neither"])


def confusion(predicted: np.ndarray, expected: np.ndarray) -> pd.DataFrame:
    """Counts of MDS class (columns) against expected class (rows), over features with both."""
    keep = pd.notna(expected) & np.isin(predicted, dominance.CLASSES)
    return pd.crosstab(pd.Series(expected[keep], name="expected"), pd.Series(predicted[keep], name="MDS class")) \
        .reindex(index=list(dominance.CLASSES), columns=list(dominance.CLASSES), fill_value=0)


def accuracy(predicted: np.ndarray, expected: np.ndarray) -> float:
    """Share of features, among those with an expected class and an MDS class, where the two agree."""
    keep = pd.notna(expected) & np.isin(predicted, dominance.CLASSES)
    return float((predicted[keep] == expected[keep]).mean()) if keep.any() else float("nan")


def _shuffled_hits(predicted: np.ndarray, expected: np.ndarray, n_perm: int, seed: int) -> np.ndarray:
    """(n_perm, features with both classes): agreement after shuffling the MDS classes among all classified
    features, which keeps the class sizes."""
    classified = np.isin(predicted, dominance.CLASSES)
    p, e = predicted[classified], expected[classified]
    keep = pd.notna(e)
    rng = np.random.default_rng(seed)
    return np.array([rng.permutation(p)[keep] == e[keep] for _ in range(n_perm)]).reshape(n_perm, int(keep.sum()))


def random_partition_accuracy(predicted: np.ndarray, expected: np.ndarray, n_perm: int = 1000,
                              seed: int = 0) -> np.ndarray:
    """Control: accuracies after shuffling the MDS classes among all classified features (same class sizes).

    Shuffling over every classified feature, not only those with an expected class, asks whether MDS puts
    the factor-encoding features in the right class more often than it would by chance.
    """
    hits = _shuffled_hits(predicted, expected, n_perm, seed)
    return hits.mean(1) if hits.shape[1] else np.full(n_perm, np.nan)


RULES = ("mean ± k std", "interval")


def mds_labels(stats: dominance.DominanceStats, k_std: float = 1.0, band: float = 0.1, min_pairs: int = 5) -> dict[str, np.ndarray]:
    """MDS classes of every feature under both rules: thresholds at mean +- k std, and bootstrap interval."""
    s, firing = stats.scores(), stats.firing()
    labels = {RULES[0]: dominance.classify(s, firing, dominance.std_thresholds(s, k_std, firing >= min_pairs), min_pairs)}
    if stats.n_boot >= 2:
        labels[RULES[1]] = dominance.classify_ci(stats.boot_scores(), firing, band, min_pairs=min_pairs)[0]
    return labels


def probe_factors(x, y, factors: pd.DataFrame, test_frac: float = 0.3, seed: int = 0,
                  cfg: world.WorldConfig | None = None) -> pd.DataFrame:
    """Held-out accuracy of a logistic-regression probe for every factor, from image and from text embeddings,
    each read on the samples where that side carries the factor, with the majority-class rate beside it:
    what each modality's embedding carries at all."""
    from sklearn.linear_model import LogisticRegression

    cfg = cfg or world.WorldConfig()
    n = len(factors)
    perm = np.random.default_rng(seed).permutation(n)
    is_test = np.zeros(n, dtype=bool)
    is_test[perm[: int(test_frac * n)]] = True
    rows = []
    for f in world.FACTORS:
        labels = factors[f.name].astype(str).to_numpy()
        for side, e in (("image", x), ("text", y)):
            present = factors[f"{SIDES[side]}_{f.name}"].to_numpy(dtype=bool)
            train, test = present & ~is_test, present & is_test
            if test.sum() < 10 or len(np.unique(labels[train])) < 2:
                continue
            e = np.asarray(e, dtype=np.float64)
            e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
            clf = LogisticRegression(max_iter=1000).fit(e[train], labels[train])
            rows.append({"factor": f.name, "kind": cfg.kind(f.name), "side": side, "samples": int(test.sum()),
                         "accuracy": float(clf.score(e[test], labels[test])),
                         "majority": float(pd.Series(labels[test]).value_counts(normalize=True).iloc[0])})
    return pd.DataFrame(rows)


def pair_examples(concepts: pd.DataFrame, zx: np.ndarray, zy: np.ndarray, factors: pd.DataFrame,
                  n: int = 8) -> pd.DataFrame:
    """The paired concepts with the highest pairing scores, each side with the factor value it detects best
    (best one-vs-rest AUROC on its own side); `attrs["same value share"]` is the share of all pairs whose two
    sides detect the same value."""
    pairs = concepts[concepts.kind == "pair"].sort_values("score", ascending=False)
    names = [(f.name, v) for f in world.FACTORS for v in f.values]
    targets = np.stack([(factors[f].astype(str) == v).to_numpy() for f, v in names], 1)

    def best(acts, latents):
        auc = np.nan_to_num(auroc_matrix(acts[:, latents], targets), nan=0.0)
        return [f"{names[k][0]} = {names[k][1]}" for k in auc.argmax(1)], auc.max(1)

    img, img_auc = best(np.asarray(zx), pairs.image_latent.to_numpy())
    txt, txt_auc = best(np.asarray(zy), pairs.text_latent.to_numpy())
    out = pd.DataFrame({"image latent": pairs.image_latent.to_numpy(), "detects (image)": img,
                        "AUROC (image)": img_auc, "caption latent": pairs.text_latent.to_numpy(),
                        "detects (caption)": txt, "AUROC (caption)": txt_auc, "pairing score": pairs.score.to_numpy()})
    out.attrs["same value share"] = float(np.mean([a == b for a, b in zip(img, txt)])) if len(out) else float("nan")
    return out.head(n).reset_index(drop=True)
