"""The Modality Dominance Score (MDS) of Yan et al. (ACL Findings 2026, arXiv:2502.14888).

MDS asks, for one feature d, how much of its activation on paired data comes from the image side:

    MDS_d = mean over pairs i where d fires of  a_d(x_i) / (a_d(x_i) + a_d(y_i))        ("ratio", default)

so 1 means the feature fires on images only, 0 on texts only, and 0.5 on both alike. The paper's
exact formula and thresholds are not public; this default is the reading in the book, and the
variants below let a chapter show whether a conclusion depends on the choice:

- "ratio": the mean per-pair share above (each firing pair counts once);
- "mass": total image activation over total activation, sum_i a(x_i) / sum_i (a(x_i) + a(y_i));
- "frequency": how often it fires on images relative to texts, p_x / (p_x + p_y);
- "energy": the share of squared activation, E_img[a^2] / (E_img[a^2] + E_txt[a^2]), the modality score
  mu of Dhimoïla et al. (ICLR 2026, arXiv 2602.06218); `attribution` turns it into their bimodal rule.

Negative activations count as 0 in every variant (SAE and NCL features are non-negative anyway).

Features are classed as ImgD (vision-dominant), TxtD (language-dominant) or CMD (cross-modal);
features that never fire are DEAD and those that fire on too few pairs are RARE, never NaN.

Everything is accumulated over minibatches of activations, so memory depends on the number of
features (times bootstrap replicates), never on the number of pairs.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Iterable, Literal

import numpy as np
import torch

IMGD, TXTD, CMD = "ImgD", "TxtD", "CMD"
DEAD, RARE, UNCERTAIN = "dead", "rare", "uncertain"
CLASSES = (IMGD, TXTD, CMD)
VARIANTS = ("ratio", "mass", "frequency", "energy")
Variant = Literal["ratio", "mass", "frequency", "energy"]


@dataclass
class DominanceStats:
    """Per-feature sums over pairs; add batches with `update`, read scores with `scores`.

    With `n_boot > 0` it also keeps Poisson-bootstrap replicates (each pair weighted by a Poisson(1)
    draw per replicate), the streaming form of the bootstrap.
    """

    n_features: int
    eps: float = 1e-8
    """An activation above eps counts as firing."""
    n_boot: int = 0
    seed: int = 0
    n_pairs: int = 0
    _sums: torch.Tensor = field(init=False, repr=False)
    _boot: torch.Tensor | None = field(init=False, repr=False)
    _gen: torch.Generator = field(init=False, repr=False)

    def __post_init__(self):
        # rows: sum of ratios over firing pairs, firing pairs, image mass, text mass, image fires, text fires,
        # image energy (sum of ax^2), text energy (sum of ay^2)
        self._sums = torch.zeros(8, self.n_features, dtype=torch.float64)
        self._boot = torch.zeros(self.n_boot, 8, self.n_features, dtype=torch.float64) if self.n_boot else None
        self._gen = torch.Generator().manual_seed(self.seed)

    @staticmethod
    def _terms(ax: torch.Tensor, ay: torch.Tensor, eps: float):
        """The eight per-pair contributions, each (B, F), one at a time so a batch never holds eight copies."""
        ax, ay = ax.double().clamp_min(0), ay.double().clamp_min(0)
        total = ax + ay
        fires = total > eps
        yield torch.where(fires, ax / total.clamp_min(eps), torch.zeros_like(total))
        yield fires.double()
        yield ax
        yield ay
        yield (ax > eps).double()
        yield (ay > eps).double()
        yield ax.square()
        yield ay.square()

    def update(self, ax: torch.Tensor, ay: torch.Tensor) -> "DominanceStats":
        """Add a batch: activations of the same features on images (B, F) and on their captions (B, F)."""
        if ax.shape != ay.shape or ax.ndim != 2 or ax.shape[1] != self.n_features:
            raise ValueError(f"Expected two (B, {self.n_features}) activation batches, got {tuple(ax.shape)} "
                             f"and {tuple(ay.shape)}.")
        w = None
        if self._boot is not None:
            w = torch.poisson(torch.ones(self.n_boot, len(ax), dtype=torch.float64), generator=self._gen)
        for k, term in enumerate(self._terms(ax, ay, self.eps)):
            self._sums[k] += term.sum(0)
            if w is not None:
                self._boot[:, k] += w @ term
        self.n_pairs += len(ax)
        return self

    def all_reduce(self, reduce_sum) -> "DominanceStats":
        """Sum these statistics with other processes' in place, for pairs split across processes: reduce_sum(t)
        sums a tensor over them (`distributed.all_reduce_sum` with its context). Not for bootstrap replicates."""
        if self._boot is not None:
            raise ValueError("all_reduce does not combine bootstrap replicates: use n_boot=0 across processes.")
        n = torch.tensor([float(self.n_pairs)], dtype=torch.float64)
        packed = reduce_sum(torch.cat([self._sums.flatten(), n]))
        self._sums = packed[:-1].view_as(self._sums).clone()
        self.n_pairs = int(packed[-1])
        return self

    def firing(self) -> np.ndarray:
        """Number of pairs on which each feature fires (on either side)."""
        return self._sums[1].numpy().copy()

    def firing_by_side(self) -> tuple[np.ndarray, np.ndarray]:
        """Number of pairs on which each feature fires on the image, and on the caption."""
        return self._sums[4].numpy().copy(), self._sums[5].numpy().copy()

    def mean_squares(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature energies (E_img[a^2], E_txt[a^2]) over the pairs seen, the terms of the "energy" score."""
        if self.n_pairs == 0:
            raise ValueError("No pairs yet: call `update` with activation batches first.")
        return (self._sums[6] / self.n_pairs).numpy(), (self._sums[7] / self.n_pairs).numpy()

    def scores(self, variant: Variant = "ratio") -> np.ndarray:
        """MDS per feature; NaN only for features that never fire (use `classify` for labels)."""
        return _score(self._sums, variant)

    def boot_scores(self, variant: Variant = "ratio") -> np.ndarray:
        """(n_boot, F) MDS of every bootstrap replicate."""
        if self._boot is None:
            raise ValueError("No bootstrap replicates: create DominanceStats with n_boot > 0.")
        return np.stack([_score(b, variant) for b in self._boot])


def _score(sums: torch.Tensor, variant: str) -> np.ndarray:
    ratio_sum, fires, mass_x, mass_y, fire_x, fire_y, energy_x, energy_y = sums
    with np.errstate(invalid="ignore", divide="ignore"):
        if variant == "ratio":
            s = ratio_sum / fires
        elif variant == "mass":
            s = mass_x / (mass_x + mass_y)
        elif variant == "frequency":
            s = fire_x / (fire_x + fire_y)
        elif variant == "energy":
            s = energy_x / (energy_x + energy_y)
        else:
            raise ValueError(f"Unknown MDS variant {variant!r}. Available: {list(VARIANTS)}")
    s = s.numpy()
    return np.where(fires.numpy() > 0, s, np.nan)


def dominance_stats(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], n_features: int, n_boot: int = 0,
                    seed: int = 0, eps: float = 1e-8) -> DominanceStats:
    """Accumulate `DominanceStats` over an iterable of (image activations, text activations) batches."""
    stats = DominanceStats(n_features, eps=eps, n_boot=n_boot, seed=seed)
    for ax, ay in batches:
        stats.update(ax, ay)
    return stats


def mds(ax: torch.Tensor, ay: torch.Tensor, variant: Variant = "ratio", eps: float = 1e-8) -> np.ndarray:
    """MDS per feature for activations held in memory, (n, F) each; see `DominanceStats` for streams."""
    return DominanceStats(ax.shape[1], eps=eps).update(ax, ay).scores(variant)


@dataclass(frozen=True)
class Thresholds:
    """Class boundaries on MDS: ImgD above `high`, TxtD below `low`, CMD in between."""

    low: float
    high: float


def std_thresholds(scores: np.ndarray, k: float = 1.0, live: np.ndarray | None = None) -> Thresholds:
    """mean +- k std of the scores of live features (the paper's style of rule)."""
    s = scores[np.isfinite(scores) if live is None else live & np.isfinite(scores)]
    if len(s) == 0:
        return Thresholds(np.nan, np.nan)
    return Thresholds(float(s.mean() - k * s.std()), float(s.mean() + k * s.std()))


def classify(scores: np.ndarray, firing: np.ndarray, thresholds: Thresholds, min_pairs: int = 5) -> np.ndarray:
    """Label each feature ImgD / TxtD / CMD by thresholds; DEAD if it never fires, RARE below min_pairs."""
    labels = np.full(len(scores), CMD, dtype=object)
    labels[scores > thresholds.high] = IMGD
    labels[scores < thresholds.low] = TXTD
    labels[firing < min_pairs] = RARE
    labels[firing == 0] = DEAD
    return labels


def classify_ci(boot: np.ndarray, firing: np.ndarray, band: float = 0.1, level: float = 0.95,
                min_pairs: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label by bootstrap interval against the cross-modal band [0.5 - band, 0.5 + band].

    ImgD if the whole interval lies above the band, TxtD if below, CMD if inside it, UNCERTAIN if it
    straddles an edge. Returns (labels, low, high).
    """
    if boot.ndim != 2 or len(boot) < 2:
        raise ValueError("classify_ci needs (n_boot >= 2, n_features) bootstrap scores.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: features that never fire
        lo, hi = np.nanquantile(boot, [(1 - level) / 2, (1 + level) / 2], axis=0)
    labels = np.full(boot.shape[1], UNCERTAIN, dtype=object)
    labels[lo > 0.5 + band] = IMGD
    labels[hi < 0.5 - band] = TXTD
    labels[(lo >= 0.5 - band) & (hi <= 0.5 + band)] = CMD
    labels[firing < min_pairs] = RARE
    labels[firing == 0] = DEAD
    return labels, lo, hi


def class_counts(labels: np.ndarray) -> dict[str, int]:
    """How many features carry each label, in a fixed order."""
    order = (IMGD, TXTD, CMD, UNCERTAIN, RARE, DEAD)
    return {c: int((labels == c).sum()) for c in order if c in set(labels) or c in CLASSES}
