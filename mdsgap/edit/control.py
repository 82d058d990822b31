"""The book's one control: a class's edit against random latent sets drawn outside the class and matched on
what they carry.

Removing a modality class of SAE latents changes many readouts simply because it removes mass. A fair
control removes the same mass: each random set is drawn from the latents *outside* the class, one stand-in
per member, each stand-in close to its member on every carried quantity (image-side and caption-side
energy and firing frequency: `carried`). The class's readout is ranked among its random sets'
in each seed (a permutation p-value), the seeds' p-values are combined (Stouffer), and one rule gives the
verdict. Sign convention everywhere: a readout's change is edited minus unedited, and 'above' means the
class's change is larger than random sets' (for a drop, read the readout as a loss).

What is matched decides the question. The default (`TOTAL`) matches the energy and firing over both sides:
does the class do more than latents that remove as much in all? Matching each side separately asks whether
it does more than latents that remove the same mass on each side; a modality class is defined by that
balance, so few latents outside it share it (the share matched and the overlap say so, and the verdict is
'no control'). Matching the image side only (`IMAGE_SIDE`) fits edits of image embeddings alone.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch
from scipy import stats as _scipy

from mdsgap import stats
from mdsgap.attribution import dominance
from mdsgap.config import check_fields

CARRIED = ("energy", "firing", "image energy", "caption energy", "image firing", "caption firing")
"""What a latent carries: its mean squared activation over images and captions together and on each side,
and the share of pairs on which it fires (on either side), of images and of captions."""
TOTAL = ("energy", "firing")
"""What to match where images and captions are both edited (the default). Matching each side instead asks
for latents outside a modality class with the class's own balance of the two sides, which the class's
definition leaves almost none of."""
IMAGE_SIDE = ("image energy", "image firing")
"""What to match where only image embeddings are edited."""
MAX_OVERLAP = 0.5
"""Random sets sharing more than this share of their latents are too few distinct sets to be a control."""
COLUMNS = ("class", "readout", "size", "change", "random mean", "random 2.5%", "random 97.5%", "p above",
           "n random", "adjusted", "matched", "overlap", "note", "unmatched")
"""The columns of a `compare` table (plus one '<quantity> ratio' per matched quantity)."""


@dataclass(frozen=True)
class ControlConfig:
    """How random sets are drawn and judged."""

    n_random: int = 200
    """Random sets per class and seed (at least 200 where the readout is cheap)."""
    neighbours: int = 10
    """A member's stand-in is drawn from its this many nearest latents outside the class."""
    tolerance: float = 1.5
    """A stand-in counts as matched when it carries within this factor of its member on every matched
    quantity (ratio in [1/t, t]); the share matched is reported beside every verdict."""
    match: tuple[str, ...] = TOTAL
    """The carried quantities matched: drop 'caption energy' where only images are edited, and so on."""
    adjust: bool = True
    """Compare the class with random sets of its exact totals, by regression on the sets' totals (`compare`);
    only with at least 10 random sets per regression coefficient."""
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "match", tuple(self.match))
        check_fields(self)
        unknown = sorted(set(self.match) - set(CARRIED))
        if unknown:
            raise ValueError(f"ControlConfig.match: unknown quantities {unknown}; choose from {list(CARRIED)}.")
        if self.tolerance <= 1:
            raise ValueError(f"ControlConfig.tolerance is a ratio and must exceed 1, got {self.tolerance}.")
        if self.neighbours < 1:
            raise ValueError(f"ControlConfig.neighbours must be at least 1, got {self.neighbours}.")
        if self.n_random < 1:
            raise ValueError(f"ControlConfig.n_random must be at least 1, got {self.n_random}.")


@torch.no_grad()
def carried(z_x: torch.Tensor, z_y: torch.Tensor) -> pd.DataFrame:
    """Per latent (rows): what it carries on paired codes z_x (images) and z_y (captions), `CARRIED`."""
    z_x, z_y = torch.as_tensor(z_x).float(), torch.as_tensor(z_y).float()
    e_x, e_y = z_x.pow(2).mean(0), z_y.pow(2).mean(0)
    return pd.DataFrame({"energy": ((e_x + e_y) / 2).numpy(), "firing": ((z_x > 0) | (z_y > 0)).float().mean(0).numpy(),
                         "image energy": e_x.numpy(), "caption energy": e_y.numpy(),
                         "image firing": (z_x > 0).float().mean(0).numpy(),
                         "caption firing": (z_y > 0).float().mean(0).numpy()})


def classified(labels) -> np.ndarray:
    """The latents a labelling puts in a class (ImgD, TxtD or CMD): the default pool of random sets."""
    return np.flatnonzero(np.isin(np.asarray(labels, dtype=object), dominance.CLASSES))


def class_sets(labels, cls: str, pool: np.ndarray, carry: pd.DataFrame, cfg: ControlConfig,
               rng: np.random.Generator) -> tuple[np.ndarray, list | None, dict]:
    """A class's members and its matched random sets drawn from `pool` minus the class (`matched_sets`):
    (members, sets, match); sets is None where the class is empty or larger than the latents outside it."""
    members = np.flatnonzero(np.asarray(labels, dtype=object) == cls)
    outside = np.setdiff1d(pool, members)
    if len(members) == 0 or len(outside) < len(members):
        return members, None, {"outside": len(outside)}
    sets, match = matched_sets(members, outside, carry, cfg, rng)
    return members, sets, match


def shrunk_p(change: float, centre: float, resid: np.ndarray, overlap: float) -> float:
    """`mid_rank_p` of a class's deviation from the random sets' centre among their residuals, the deviation
    shrunk by sqrt((1 - o) / (1 + o)) for sets that share a share o of their latents (see `compare`)."""
    return mid_rank_p(np.sqrt((1 - overlap) / (1 + overlap)) * (change - centre), resid)


def matched_sets(members: np.ndarray, pool: np.ndarray, carry: pd.DataFrame, cfg: ControlConfig,
                 rng: np.random.Generator) -> tuple[list[np.ndarray], dict]:
    """`cfg.n_random` sets of len(members) latents from `pool` (the latents outside the class): each member
    is replaced by one of its `cfg.neighbours` nearest pool latents (largest log-ratio over the matched
    quantities) not yet in the set, at random. Returns the sets and how well they match: the share of
    stand-ins within `cfg.tolerance` of their member, and per matched quantity the mean ratio of a set's
    total to the class's."""
    floor = {q: 1e-3 * max(float(carry[q].max()), 1e-12) for q in cfg.match}  # zero and tiny count alike
    logs = np.stack([np.log(carry[q].to_numpy(float) + floor[q]) for q in cfg.match], 1)
    dist = np.abs(logs[members][:, None, :] - logs[pool][None, :, :]).max(-1)  # (members, pool)
    order = np.argsort(dist, axis=1, kind="stable")
    sets, within = [], 0
    for _ in range(cfg.n_random):
        used = np.zeros(len(pool), bool)
        chosen = np.empty(len(members), np.int64)
        for i in rng.permutation(len(members)):
            free = order[i][~used[order[i]]][:cfg.neighbours]
            j = rng.choice(free)
            within += dist[i, j] <= np.log(cfg.tolerance)
            used[j] = True
            chosen[i] = pool[j]
        sets.append(chosen)
    totals = {q: float(np.mean([carry[q].to_numpy()[s].sum() for s in sets]) /
                       max(carry[q].to_numpy()[members].sum(), 1e-12)) for q in cfg.match}
    return sets, {"matched": within / max(1, cfg.n_random * len(members)), "overlap": overlap(sets),
                  **{f"{q} ratio": r for q, r in totals.items()}}


def overlap(sets: list[np.ndarray]) -> float:
    """The mean share of latents two different random sets have in common."""
    if len(sets) < 2:
        return 0.0
    ids = {v: k for k, v in enumerate(np.unique(np.concatenate(sets)))}
    m = np.zeros((len(sets), len(ids)))
    for i, s in enumerate(sets):
        m[i, [ids[v] for v in s]] = 1.0
    g = m @ m.T
    return float((g.sum() - np.trace(g)) / (len(sets) * (len(sets) - 1) * len(sets[0])))


def _reached(totals: np.ndarray) -> np.ndarray:
    """Per matched quantity: whether the class's total (0 in `_class_rows`' relative totals) lies among the
    random sets' totals (rows), so a comparison at the class's mass interpolates rather than extrapolates."""
    return (totals.min(0) <= 0) & (totals.max(0) >= 0)


def _class_rows(readout, base: dict, cls: str, members: np.ndarray, sets, match: dict, quantities: np.ndarray,
                cfg: ControlConfig) -> list[dict]:
    """`compare`'s rows for one class and its drawn sets (`class_sets`); `base` is the unedited readout."""
    rows = []
    if sets is None:  # said, not dropped: the class is there but has no control
        return [{"class": cls, "readout": name, "size": len(members), "n random": 0,
                 "note": f"no control: {len(members)} latents, {match['outside']} outside"} for name in base]
    mine = readout(members)
    rand = pd.DataFrame([readout(s) for s in sets])
    # Set totals relative to the class's, so the regression's intercept is the value at the class's mass.
    scale = np.maximum(quantities[members].sum(0), 1e-12)
    totals = np.stack([quantities[s].sum(0) for s in sets]) / scale - 1
    shrink = np.sqrt((1 - match["overlap"]) / (1 + match["overlap"]))
    note = "" if match["overlap"] <= MAX_OVERLAP else f"no control: the sets share {match['overlap']:.0%}"
    # Not matched on what it removes: the class carries more (or less) of a matched quantity than every
    # random set, and the sets carry beyond `cfg.tolerance` of it on average; a class with nothing to be
    # compared to gets no verdict rather than one against sets of another mass.
    off = [(q, match[f"{q} ratio"]) for q, reached in zip(cfg.match, _reached(totals))
           if not reached and not 1 / cfg.tolerance <= match[f"{q} ratio"] <= cfg.tolerance]
    if off:  # the first reason to give: what the sets remove, before how much they share
        note = f"no control: the random sets carry {off[0][1]:.2g} times the class's {off[0][0]}"
    for name, value in mine.items():
        change, r = value - base[name], rand[name].to_numpy(float) - base[name]
        ok = np.isfinite(r)
        if not np.isfinite(change) or ok.sum() < 2:  # a readout this data cannot give (no group named)
            continue
        r, tot = r[ok], totals[ok]
        # Adjust only along quantities whose class total lies among the sets' (interpolate, never
        # extrapolate: a class that carries nothing on one side has no stand-in that carries as little).
        inside = _reached(tot)
        adjust = int(inside.sum()) if cfg.adjust and len(r) >= 10 * (inside.sum() + 1) else 0
        centre, resid = float(r.mean()), r - r.mean()
        if adjust:
            design = np.column_stack([np.ones(len(r)), tot[:, inside]])
            coef = np.linalg.lstsq(design, r, rcond=None)[0]
            centre, resid = float(coef[0]), r - design @ coef
        # The range a set carrying the class's totals would fall in, widened as the test widens it.
        lo, hi = np.quantile(resid, [0.025, 0.975]) / (1.0 if note else shrink)
        rows.append({"class": cls, "readout": name, "size": len(members), "change": change,
                     "random mean": centre, "random 2.5%": centre + lo, "random 97.5%": centre + hi,
                     "p above": shrunk_p(change, centre, resid, match["overlap"]) if not note else np.nan,
                     "n random": len(r), "adjusted": adjust, **match, "note": note,
                     "unmatched": ", ".join(q for q, i in zip(cfg.match, inside) if not i)})
    return rows


def compare(readout: Callable[[np.ndarray], dict], labels, carry: pd.DataFrame, cfg: ControlConfig = ControlConfig(),
            classes=dominance.CLASSES, pool=None) -> pd.DataFrame:
    """One seed's comparison: each class's change of every readout against its matched random sets.

    `readout(latents)` returns {name: value} after removing (or otherwise editing) those latents; it is called
    with no latents once for the unedited value, once per class and once per random set. `labels` gives each
    latent's class; random sets come from `pool` (default: every classified latent, ImgD, TxtD or CMD) minus
    the class.

    The random sets share some latents (a heavy member has few heavy stand-ins), so they vary less than a set
    of fresh latents would and their mean is one draw of the pool's: the class's deviation is shrunk by
    sqrt((1 - o) / (1 + o)) before it is ranked, o the sets' mean `overlap` (exact for additive effects of
    exchangeable latents; the tests check the calibration). What per-latent matching leaves (a class holding
    the heaviest latents has no equally heavy stand-ins) is adjusted: with enough random sets (`cfg.adjust`),
    each readout's random changes are regressed on the sets' totals of the matched quantities, and the class
    is compared with what a random set carrying exactly the class's totals does (the regression's value
    there, and the random sets' residuals around it).
    One row per (class, readout): size, change (class), random mean, 2.5% and 97.5% (for a set carrying the
    class's totals), p above (`mid_rank_p` of the class among the random sets: small when the class's change is
    larger, near 1 when smaller), n random, adjusted (how many quantities the regression used), how well
    the sets match (`matched_sets`), a note where a class has no control (larger than the latents outside
    it, sets sharing most latents, or sets that all carry less, or all more, of a matched quantity than the
    class, beyond `cfg.tolerance` on average: they do not remove what it removes), and the quantities
    whose class total no random set reaches (unmatched: the class carries more, or less, of them than any
    set).
    """
    labels = np.asarray(labels, dtype=object)
    if len(labels) != len(carry):
        raise ValueError(f"labels ({len(labels)}) and carry ({len(carry)}) must have one row per latent.")
    rng = np.random.default_rng(cfg.seed)
    base = readout(np.array([], np.int64))
    every = classified(labels) if pool is None else np.asarray(pool)
    quantities = carry[list(cfg.match)].to_numpy(float)
    rows = []
    for cls in classes:
        members, sets, match = class_sets(labels, cls, every, carry, cfg, rng)
        if len(members):
            rows += _class_rows(readout, base, cls, members, sets, match, quantities, cfg)
    return pd.DataFrame(rows, columns=list(dict.fromkeys([*COLUMNS, *(k for r in rows for k in r)])))


def score_rank(labels, scores) -> np.ndarray:
    """Each classified latent's place in its class's removal order, larger first: ImgD by its score, TxtD
    by minus its score, CMD by closeness to 1/2 (the most dominant, or most balanced, latents go first)."""
    labels, s = np.asarray(labels, dtype=object), np.asarray(scores, dtype=np.float64)
    rank = np.full(len(s), -np.inf)
    rank[labels == dominance.IMGD] = s[labels == dominance.IMGD]
    rank[labels == dominance.TXTD] = -s[labels == dominance.TXTD]
    rank[labels == dominance.CMD] = -np.abs(s[labels == dominance.CMD] - 0.5)
    return np.nan_to_num(rank, nan=-np.inf)


def dose_response(readout: Callable[[np.ndarray], dict], labels, rank, carry: pd.DataFrame, doses,
                  cfg: ControlConfig = ControlConfig(), classes=dominance.CLASSES, pool=None) -> pd.DataFrame:
    """`compare` at several doses: for each class, its first k latents in `rank` order (`score_rank`, larger
    first; ties broken by carried energy, heaviest first) against matched random sets of k latents drawn
    outside the *whole* class, for every k in `doses` no larger than the class. A class too large to have a control as a whole gets one at the doses the
    latents outside it can match; the first dose whose sets share too many latents ends the class's curve
    ('no control', without readouts). One `compare` row per (class, dose, readout), with a `dose` column."""
    labels, rank = np.asarray(labels, dtype=object), np.asarray(rank, dtype=np.float64)
    every = classified(labels) if pool is None else np.asarray(pool)
    base = readout(np.array([], np.int64))
    quantities = carry[list(cfg.match)].to_numpy(float)
    rows = []
    for cls in classes:
        c = dominance.CLASSES.index(cls) if cls in dominance.CLASSES else zlib.crc32(str(cls).encode())
        members = np.flatnonzero(labels == cls)
        heavy = carry["energy"].to_numpy(float)[members] if "energy" in carry else np.zeros(len(members))
        ordered = members[np.lexsort((-heavy, -rank[members]))]  # ties (shares of 0 or 1): heaviest first
        outside = np.setdiff1d(every, members)
        for k in sorted({int(d) for d in doses if 0 < int(d) <= len(members)}):
            first = np.full(len(labels), None, dtype=object)
            first[ordered[:k]] = cls
            rng = np.random.default_rng((cfg.seed, c, k))  # one stream per (seed, class, dose), whatever
            # other classes the caller asks for
            dosed, sets, match = class_sets(first, cls, outside, carry, cfg, rng)
            if sets is not None and match["overlap"] > MAX_OVERLAP:
                # Say so without reading the sets out; a larger dose shares more, so the class stops here.
                rows += [{"class": cls, "readout": name, "size": k, "n random": 0, "dose": k,
                          "note": f"no control: the sets share {match['overlap']:.0%}"} for name in base]
                break
            got = _class_rows(readout, base, cls, dosed, sets, match, quantities, cfg)
            rows += [{**r, "dose": k} for r in got]
            if sets is None:
                break
    keys = (k for r in rows for k in r if k != "dose")
    return pd.DataFrame(rows, columns=list(dict.fromkeys([*COLUMNS, *keys, "dose"])))


def mid_rank_p(value: float, random: np.ndarray) -> float:
    """P(a random set's change >= value), counting ties half and the value itself as one of the draws:
    (0.5 + #greater + 0.5 #equal) / (n + 1), never 0 or 1, uniform on average when value is one more draw."""
    random = np.asarray(random, dtype=np.float64)
    random = random[np.isfinite(random)]
    if not np.isfinite(value) or len(random) == 0:
        return float("nan")
    ties = np.isclose(random, value, rtol=1e-9, atol=1e-12)
    return float((0.5 + np.sum((random > value) & ~ties) + 0.5 * np.sum(ties)) / (len(random) + 1))


def verdicts(per_seed: pd.DataFrame, by=("class", "readout"), level: float = 0.05) -> pd.DataFrame:
    """The book's one verdict on `compare` tables of several seeds (a `seed` column; other labelling columns
    may be added to `by`): per group, the class's change minus the random sets' value at its totals, with its
    t-interval over seeds (value, low, high); the p-value that combines the seeds' one-sided p-values
    (Stouffer's z, two-sided); and the verdict: 'above' or 'below' at p < level, 'within' otherwise,
    'undecidable' where even a class beyond every random set in every seed could not reach the level (too
    few random sets), and 'no control' where no seed had one (`compare`'s note says why)."""
    rows = []
    for key, d in per_seed.groupby(list(by), sort=False):
        ok = d[np.isfinite(d["p above"].to_numpy(float))]
        row = {**dict(zip(by, key if isinstance(key, tuple) else (key,))), "size": float(d["size"].mean()),
               "change": float(d["change"].mean()), "random mean": float(d["random mean"].mean())}
        if ok.empty:
            rows.append({**row, "value": np.nan, "low": np.nan, "high": np.nan, "p": np.nan, "seeds": 0,
                         "matched": np.nan, "verdict": "no control"})
            continue
        z = _scipy.norm.isf(ok["p above"].to_numpy(float)).sum() / np.sqrt(len(ok))
        p = float(min(1.0, 2 * _scipy.norm.sf(abs(z))))
        best = _scipy.norm.isf(0.5 / (ok["n random"].to_numpy(float) + 1)).sum() / np.sqrt(len(ok))
        value, low, high = stats.interval((ok["change"] - ok["random mean"]).to_numpy())
        verdict = ("undecidable" if 2 * _scipy.norm.sf(best) >= level else "within" if p >= level
                   else "above" if z > 0 else "below")
        unmatched = sorted({q for u in ok.get("unmatched", pd.Series(dtype=object)).dropna() for q in u.split(", ")
                            if q})
        rows.append({**row, "value": value, "low": low, "high": high, "p": p, "seeds": len(ok),
                     "matched": float(ok["matched"].mean()), "unmatched": ", ".join(unmatched), "verdict": verdict})
    return pd.DataFrame(rows, columns=[*by, "size", "change", "random mean", "value", "low", "high", "p", "seeds",
                                       "matched", "unmatched", "verdict"])
