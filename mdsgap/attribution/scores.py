"""Modality attribution beyond the per-feature MDS: energy scores, the bridge across the gap, concept-level scores.

Sources: the bridge score of Papadimitriou, Su, Fel, Kakade and Gil (COLM 2025, arXiv 2504.11695); the energy
score, bimodal rule, covariance bridge, mu_B and E_B / E of Dhimoïla, Fel, Boutin and Picard (ICLR 2026,
arXiv 2602.06218; code github.com/Parabrele/IsoEnergy, src/utils.py). The concept level (`pair_latents`,
`concept_scores`) is this project's own: an SAE often splits one concept into an image-side latent and a
caption-side latent, which score about 1 and 0 alone; paired, they score the concept's image share.

Codes are (n, F) arrays or tensors of the same F latents on n images and on their n captions (row i of both is
one pair); a decoder is (F, d), one atom per row. Results are numpy float64.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal

import numpy as np
import pandas as pd
import torch

from mdsgap.attribution.dominance import CMD, DEAD, IMGD, TXTD, mds

METHODS = ("coactivation", "bridge")
WEIGHTINGS = ("energy", "frequency", "normalised energy")
Weighting = Literal["energy", "frequency", "normalised energy"]


def _np(a) -> np.ndarray:
    """A numpy float64 copy of an array or a (possibly GPU) tensor."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def _codes(zx, zy) -> tuple[np.ndarray, np.ndarray]:
    zx, zy = _np(zx), _np(zy)
    if zx.ndim != 2 or zx.shape != zy.shape:
        raise ValueError(f"Expected image and caption codes of the same (n, F) shape, got {zx.shape} and {zy.shape}; "
                         "pass row i of both for the i-th image-caption pair.")
    return zx, zy


def _band(low: float, high: float):
    if not 0 <= low <= high <= 1:
        raise ValueError(f"Need 0 <= low <= high <= 1, got low={low}, high={high}; the paper's band is 0.05, 0.95.")


# --- The energy score (Dhimoïla et al. 2026) ------------------------------------------------------------------------
# mu_i = E_img[z_i^2] / (E_img[z_i^2] + E_txt[z_i^2]) is dominance.mds(zx, zy, "energy"), streaming in DominanceStats.

def bimodal(mu, low: float = 0.05, high: float = 0.95) -> np.ndarray:
    """Dhimoïla et al.'s (2026) bimodal rule: a latent is bimodal when low <= mu <= high (NaN, a dead latent: no).

    mu is the energy score E_img[z^2] / (E_img[z^2] + E_txt[z^2]) (`dominance.mds(zx, zy, "energy")`).
    """
    _band(low, high)
    mu = np.asarray(mu, dtype=np.float64)
    return (mu >= low) & (mu <= high)


def energy_classes(mu, low: float = 0.05, high: float = 0.95) -> np.ndarray:
    """The bimodal rule as MDS labels: mu > high ImgD, mu < low TxtD, else CMD; NaN (never active) DEAD.

    mu is the energy score of Dhimoïla et al. (2026); CMD here is their "bimodal".
    """
    _band(low, high)
    mu = np.asarray(mu, dtype=np.float64)
    labels = np.full(mu.shape, CMD, dtype=object)
    labels[mu > high] = IMGD
    labels[mu < low] = TXTD
    labels[np.isnan(mu)] = DEAD
    return labels


# --- The bridge (Papadimitriou et al. 2025; Dhimoïla et al. 2026) ---------------------------------------------------

@dataclass
class CrossCovariance:
    """Streaming image x text cross-covariance W = (zx - mean_x)^T (zy - mean_y) / n of paired codes, F x F.

    The W of Dhimoïla et al.'s (2026) bridge; memory F x F whatever n. Sums are kept about the first batch's means
    (a shifted, numerically safe form of sum(x y^T) / n - mean_x mean_y^T).
    """

    n_features: int
    n: int = 0
    _shift: tuple | None = field(default=None, init=False, repr=False)
    _sums: dict = field(init=False, repr=False)

    def __post_init__(self):
        f = self.n_features
        self._sums = dict(x=np.zeros(f), y=np.zeros(f), xx=np.zeros(f), yy=np.zeros(f), xy=np.zeros((f, f)))

    def update(self, zx, zy) -> "CrossCovariance":
        """Add a batch of pairs: image codes (B, F) and caption codes (B, F)."""
        zx, zy = _codes(zx, zy)
        if zx.shape[1] != self.n_features:
            raise ValueError(f"Expected {self.n_features} latents, got {zx.shape[1]}; create "
                             f"CrossCovariance({zx.shape[1]}) for these codes.")
        if self._shift is None:
            self._shift = zx.mean(0), zy.mean(0)
        x, y = zx - self._shift[0], zy - self._shift[1]
        s = self._sums
        s["x"] += x.sum(0)
        s["y"] += y.sum(0)
        s["xx"] += (x * x).sum(0)
        s["yy"] += (y * y).sum(0)
        s["xy"] += x.T @ y
        self.n += len(x)
        return self

    def matrix(self, correlation: bool = False) -> np.ndarray:
        """W (F x F; row: image-side latent, column: caption-side latent), divided by n (not n - 1).

        With correlation=True, W_ij / sqrt(var_x,i var_y,j) (Pearson; 0 where a latent is constant on its side):
        what the reference's `normalize` line intends but, indexing a copy, never does.
        """
        if self.n == 0:
            raise ValueError("No pairs yet: call `update` with (image codes, caption codes) batches first.")
        s, n = self._sums, self.n
        mx, my = s["x"] / n, s["y"] / n
        w = s["xy"] / n - np.outer(mx, my)
        if correlation:
            sd = np.outer(np.sqrt(np.maximum(s["xx"] / n - mx**2, 0)), np.sqrt(np.maximum(s["yy"] / n - my**2, 0)))
            w = np.divide(w, sd, out=np.zeros_like(w), where=sd > 1e-12)
        return w


def cross_covariance(batches: Iterable[tuple], n_features: int, correlation: bool = False) -> np.ndarray:
    """W = (zx - mean)^T (zy - mean) / n over an iterable of (image codes, caption codes) batches (Dhimoïla 2026)."""
    acc = CrossCovariance(n_features)
    for zx, zy in batches:
        acc.update(zx, zy)
    return acc.matrix(correlation)


def _keep_top(m: np.ndarray, quantile: float) -> np.ndarray:
    """The reference's rule: t = the int(quantile * size)-th smallest signed entry; zero entries with |m| < t."""
    k = max(int(quantile * m.size), 1)
    t = np.partition(m.ravel(), k - 1)[k - 1]
    return np.where(np.abs(m) < t, 0.0, m)


def bridge(w, decoder, sparsify: bool = False, w_quantile: float = 0.999, gram_quantile: float = 0.9) -> np.ndarray:
    """Bridge B = W ⊙ (D D^T): B_ij is large when image-side latent i and caption-side latent j fire on the same
    pairs (W, e.g. `cross_covariance`) and their decoder atoms point the same way (Papadimitriou et al. 2025,
    arXiv 2504.11695, with W = E[z(x) z(y)^T]; Dhimoïla et al. 2026, arXiv 2602.06218, with W the covariance).

    Normalisation: none, W is the plain covariance (divided by n) and D the raw atoms. This is what the reference
    (IsoEnergy `measure_bridge`) computes: its line dividing W by sqrt(var_x var_y) indexes a copy and has no effect.
    sparsify=True applies the reference's sparsification: keep the top 0.1% of W (w_quantile) and the top 10% of
    D D^T (gram_quantile), each as `bridge[abs(bridge) < kthvalue(bridge, int(q * size))] = 0`, a signed threshold
    on absolute values, so large negative entries survive too. The reference always sparsifies; here it is off.
    """
    w, d = _np(w), _np(decoder)
    if d.ndim != 2 or w.shape != (len(d), len(d)):
        raise ValueError(f"Expected W (F, F) and a decoder (F, d) with one atom per latent, got {w.shape} and "
                         f"{d.shape}; transpose the decoder if its atoms are columns.")
    gram = d @ d.T
    if sparsify:
        w, gram = _keep_top(w, w_quantile), _keep_top(gram, gram_quantile)
    return w * gram


def _bridge_norms(b) -> tuple[np.ndarray, np.ndarray]:
    b = np.abs(_np(b))
    if b.ndim != 2 or b.shape[0] != b.shape[1]:
        raise ValueError(f"Expected a square bridge matrix (F, F), got {b.shape}; build it with `bridge`.")
    return b.sum(1), b.sum(0)


def bridge_modality_score(b) -> np.ndarray:
    """mu_B = rowsum|B| / (rowsum|B| + colsum|B|) per latent (Dhimoïla et al. 2026, `get_bridge_norms`): 1 when the
    latent bridges only as the image side, 0 only as the caption side. NaN where it bridges nothing (the reference
    adds 1e-12 and reports 0)."""
    rows, cols = _bridge_norms(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows + cols > 0, rows / (rows + cols), np.nan)


def bridge_energy(b) -> np.ndarray:
    """E_B = (rowsum|B| + colsum|B|) / 2 per latent, its bridge mass (Dhimoïla et al. 2026, `get_bridge_norms`)."""
    rows, cols = _bridge_norms(b)
    return (rows + cols) / 2


def cross_modal_share(b, e_img, e_txt) -> np.ndarray:
    """E_B / E per latent, the reference's cross-modal share (Dhimoïla et al. 2026, `_intervene(use_E_B=True)` keeps
    latents with E_B / (E + 1e-8) >= tau), with E = (E_img[z^2] + E_txt[z^2]) / 2, the energy over images and
    captions together (`DominanceStats.mean_squares()` gives e_img, e_txt). Not bounded by 1: B is in units of
    covariance x atom norms. NaN where E = 0.
    """
    e = (_np(e_img) + _np(e_txt)) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(e > 0, bridge_energy(b) / e, np.nan)


# --- Concept-level MDS (this project's lead, SCIENCE.md section 7) --------------------------------------------------

def pair_latents(zx, zy, method: str = "coactivation", decoder=None, floor: float = 0.1, classes=None,
                 low: float = 0.05, high: float = 0.95) -> pd.DataFrame:
    """Concepts across the gap: pair each image-dominant latent with its best caption-dominant partner.

    Scores S_ij over image-dominant i and caption-dominant j: "coactivation", the Pearson correlation of zx[:, i]
    and zy[:, j] over pairs; "bridge", that correlation ⊙ the cosine of the two decoder atoms (the scale-free
    bridge of Papadimitriou et al. 2025 / Dhimoïla et al. 2026, so one floor serves both methods). A pair is kept
    when each is the other's best and S_ij > floor. Classes default to `energy_classes` of the energy score.
    Returns one row per concept: concept, image_latent, text_latent, score, kind. An unpaired latent is a concept
    of one latent (the other side -1, kind "image" or "text"); a cross-modal (CMD) latent is both sides of its own
    concept (kind "cross-modal"); score is NaN unless paired; dead latents are left out.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown pairing method {method!r}. Available: {list(METHODS)}")
    zx, zy = _codes(zx, zy)
    n_feat = zx.shape[1]
    if classes is None:
        classes = energy_classes(mds(torch.from_numpy(zx), torch.from_numpy(zy), "energy"), low, high)
    classes = np.asarray(classes, dtype=object)
    if classes.shape != (n_feat,):
        raise ValueError(f"Expected one class label per latent ({n_feat}), got shape {classes.shape}; pass "
                         "dominance labels such as energy_classes(mu), or None to compute them.")
    s = CrossCovariance(n_feat).update(zx, zy).matrix(correlation=True)
    if method == "bridge":
        if decoder is None:
            raise ValueError('method="bridge" needs the decoder (F, d); pass decoder=sae.W_dec.')
        d = _np(decoder)
        d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        s = bridge(s, d)
    img, txt = np.flatnonzero(classes == IMGD), np.flatnonzero(classes == TXTD)
    rows, paired_i, paired_j = [], set(), set()
    if len(img) and len(txt):
        sub = s[np.ix_(img, txt)]
        best_j, best_i = sub.argmax(1), sub.argmax(0)
        for a, b in enumerate(best_j):
            if best_i[b] == a and sub[a, b] > floor:
                rows.append((img[a], txt[b], sub[a, b], "pair"))
                paired_i.add(img[a])
                paired_j.add(txt[b])
    rows += [(i, -1, np.nan, "image") for i in img if i not in paired_i]
    rows += [(-1, j, np.nan, "text") for j in txt if j not in paired_j]
    rows += [(k, k, np.nan, "cross-modal") for k in np.flatnonzero(classes == CMD)]
    table = pd.DataFrame(rows, columns=["image_latent", "text_latent", "score", "kind"])
    table = table.astype({"image_latent": int, "text_latent": int, "score": float})
    table.insert(0, "concept", np.arange(len(table)))
    return table


def concept_scores(zx, zy, concepts: pd.DataFrame, weighting: Weighting = "energy", eps: float = 1e-8) -> np.ndarray:
    """Each concept's image share, from the latents of its row in `pair_latents`' table (NaN if it never fires).

    - "energy": sum_l E_img[z_l^2] / (sum_l E_img[z_l^2] + sum_l E_txt[z_l^2]) over the concept's latents l
      (Dhimoïla et al. 2026's energy score, summed over a concept instead of one latent);
    - "frequency": P_img(any of its latents fires) / (P_img(...) + P_txt(...)), firing meaning z > eps;
    - "normalised energy": "energy" after dividing each latent by its RMS over the samples (images and captions)
      where it fires, so an image-side latent and its caption-side partner weigh the same per firing.

    Why three: take a concept shown in an image with probability q and named in its caption with probability p,
    detected cleanly by an image-side latent of size a and a caption-side latent of size b. Frequency gives
    q / (q + p); normalised energy turns both sizes into 1 and also gives q / (q + p) (`world.ideal_share`); raw energy
    gives q a^2 / (q a^2 + p b^2), equal to it only when a = b: it is biased towards the side whose activations are
    larger (a = 3 b counts every image firing nine times). A single cross-modal latent is scored like a pair, but
    no normalisation can undo a size difference between its own two sides. Negative activations count as 0.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"Unknown weighting {weighting!r}. Available: {list(WEIGHTINGS)}")
    zx, zy = _codes(zx, zy)
    zx, zy = np.maximum(zx, 0), np.maximum(zy, 0)
    n_feat = zx.shape[1]
    i = concepts["image_latent"].to_numpy(dtype=int)
    j = concepts["text_latent"].to_numpy(dtype=int)
    j = np.where(j == i, -1, j)  # a cross-modal latent is both sides of its concept: count it once
    if ((i < -1) | (i >= n_feat) | (j < -1) | (j >= n_feat)).any():
        raise ValueError(f"Concept latents must be -1 or in [0, {n_feat}); build the table with `pair_latents`.")
    i, j = np.where(i < 0, n_feat, i), np.where(j < 0, n_feat, j)  # -1 -> a padding latent that never fires

    def pad(a):
        return np.concatenate([a, np.zeros((len(a), 1), dtype=a.dtype)], 1)

    if weighting == "frequency":
        fx, fy = pad(zx > eps), pad(zy > eps)
        img, txt = (fx[:, i] | fx[:, j]).mean(0), (fy[:, i] | fy[:, j]).mean(0)
    else:
        ex, ey = (zx**2).mean(0), (zy**2).mean(0)
        if weighting == "normalised energy":
            fires = (zx > eps).sum(0) + (zy > eps).sum(0)
            ms = np.divide((zx**2).sum(0) + (zy**2).sum(0), fires, out=np.ones(n_feat), where=fires > 0)
            ex, ey = ex / ms, ey / ms
        ex, ey = np.append(ex, 0.0), np.append(ey, 0.0)
        img, txt = ex[i] + ex[j], ey[i] + ey[j]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(img + txt > 0, img / (img + txt), np.nan)


def ideal_ratio_mds(q, p, ratio: float = 0.5) -> np.ndarray:
    """The ideal of the paper's default per-pair MDS ("ratio", Yan et al. 2026) for one clean cross-modal detector.

    It fires on the image when the concept is shown (probability q) and on the caption when named (p), independently.
    MDS averages a / (a + b) over pairs where it fires at all (probability q + p - q p): both fire (q p) give `ratio`
    (1/2 for equal sizes), image only (q (1 - p)) gives 1, caption only ((1 - q) p) gives 0, so
        MDS = (q p ratio + q (1 - p)) / (q + p - q p);
    e.g. a concept always shown scores 1 - p / 2, not the concept-level 1 / (1 + p). NaN where q = p = 0.
    """
    q, p = np.asarray(q, dtype=np.float64), np.asarray(p, dtype=np.float64)
    fires = q + p - q * p
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(fires > 0, (q * p * ratio + q * (1 - p)) / fires, np.nan)


# --- Probe partners: a concept's other side read by a linear probe (this project's own) -----------------------------

@dataclass
class ProbePartners:
    """For every one-sided latent, a ridge probe that reads its concept from the *other* modality's embedding.

    An image-only latent i detects its concept on images; which captions carry the same concept? The probe
    g_i(y) = w_i . [y, 1], fitted on matched pairs to predict z_i(x) from the caption embedding y, answers it:
    it is high on captions that name what latent i sees, whether the concept is one factor value or a
    conjunction (a linear probe can weigh "red" and "circle" together, where a single caption latent cannot).
    A caption fires the partner when g_i(y) passes the midpoint (`fraction` 1/2) between two levels the probe
    itself sets: its *prior*, what a caption that says nothing of the concept predicts (the probe's mean over
    the fitting pairs: a least-squares probe with a free bias predicts the unconditional mean E[z_i] from an
    uninformative input), and its *plateau*, the `plateau` quantile over the fitting pairs where latent i
    fires, the level it reaches when the caption carries the concept. A threshold at a fixed share of the
    plateau leaks: for a binary factor a silent caption predicts half the plateau (the value's base rate)
    and half of them fire. Caption latents get image probes the same way. A probe whose held-out R^2 is below
    `r2_floor` says the other side never carries the concept (its partner never fires); shuffled captions
    leave every probe there.
    """

    side: np.ndarray
    """Per latent: "image" (fires on images only), "text" (captions only), "both" or "dead"."""
    weights: np.ndarray
    """(F, d + 1) probe weights (for the other side's embedding and a bias); zero rows where side is both/dead."""
    threshold: np.ndarray
    """(F,) where each probe partner fires: prior + fraction * (plateau - prior), see the class docstring."""
    r2: np.ndarray
    """(F,) held-out R^2 of each probe (NaN where there is none)."""
    r2_floor: float
    eps: float = 1e-8

    def partner_fires(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(n, F) booleans: where each latent's probe partner fires on the images x and on the captions y."""
        ex, ey = _with_bias(x), _with_bias(y)
        on_img, on_txt = self.side == "text", self.side == "image"  # the partner lives on the other side
        live = np.isfinite(self.r2) & (self.r2 >= self.r2_floor)
        gx, gy = ex @ self.weights.T, ey @ self.weights.T
        return (gx > self.threshold) & on_img & live, (gy > self.threshold) & on_txt & live

    def fires(self, zx, zy, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(n, F) booleans: where each latent fires on the images and on the captions, its missing side read
        from its probe partner (a one-sided latent's own side where it has one)."""
        zx, zy = _codes(zx, zy)
        px, py = self.partner_fires(x, y)
        return (np.where(self.side == "text", px, zx > self.eps),
                np.where(self.side == "image", py, zy > self.eps))

    def shares(self, zx, zy, x, y) -> np.ndarray:
        """Each latent's image share q / (q + p), read as P(image side fires) / (P(image) + P(caption)), where a
        one-sided latent's missing side is its probe partner; NaN for dead latents."""
        fx, fy = self.fires(zx, zy, x, y)
        img, txt = fx.mean(0), fy.mean(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(img + txt > 0, img / (img + txt), np.nan)
        out[self.side == "dead"] = np.nan
        return out


def _with_bias(e) -> np.ndarray:
    e = _np(e)
    return np.concatenate([e, np.ones((len(e), 1))], 1)


def _ridge(inputs: np.ndarray, targets: np.ndarray, ridge: float) -> np.ndarray:
    """(targets, d + 1) ridge weights; the bias column (last) is not penalised."""
    gram = inputs.T @ inputs
    pen = ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
    pen[-1, -1] = 0.0
    return np.linalg.solve(gram + pen, inputs.T @ targets).T


def fit_probe_partners(zx, zy, x, y, low: float = 0.05, high: float = 0.95, ridge: float = 1e-3,
                       plateau: float = 0.9, fraction: float = 0.5, r2_floor: float = 0.05,
                       seed: int = 0, reference: str = "prior") -> ProbePartners:
    """Fit `ProbePartners` on n matched pairs: codes zx, zy (n, F) and embeddings x, y (n, d).

    A latent is one-sided by the energy rule (`energy_classes` with low, high); its probe is fitted on a random
    half of the pairs and its R^2 measured on the other half; `fraction` places the threshold between a
    reference level and the probe's plateau (1/2: the midpoint). The reference is the probe's prior
    (`reference="prior"`) or, with "absent", the `plateau` quantile of the probe over the pairs where the
    latent is silent: the highest level the other side reaches when the pair lacks the concept (a caption
    naming half of a conjunction), noise included.
    """
    if reference not in ("prior", "absent"):
        raise ValueError(f"Unknown probe reference {reference!r}; use 'prior' or 'absent'.")
    zx, zy = _codes(zx, zy)
    x, y = _np(x), _np(y)
    if len(x) != len(zx) or len(y) != len(zy):
        raise ValueError(f"Codes and embeddings must have one row per pair: got {len(zx)} codes and {len(x)} "
                         "embeddings; encode the same pairs you pass.")
    classes = energy_classes(mds(torch.from_numpy(zx), torch.from_numpy(zy), "energy"), low, high)
    side = np.select([classes == IMGD, classes == TXTD, classes == CMD], ["image", "text", "both"], "dead")
    perm = np.random.default_rng(seed).permutation(len(x))
    fit, held = perm[: len(x) // 2], perm[len(x) // 2:]
    weights = np.zeros((zx.shape[1], x.shape[1] + 1))
    r2 = np.full(zx.shape[1], np.nan)
    threshold = np.full(zx.shape[1], np.inf)
    for own, target, other in (("image", zx, y), ("text", zy, x)):
        idx = np.flatnonzero(side == own)
        if not len(idx):
            continue
        e = _with_bias(other)
        w = _ridge(e[fit], target[fit][:, idx], ridge)
        pred = e @ w.T
        resid = ((target[held][:, idx] - pred[held]) ** 2).sum(0)
        total = ((target[held][:, idx] - target[held][:, idx].mean(0)) ** 2).sum(0)
        r2[idx] = 1 - resid / np.maximum(total, 1e-12)
        fires = target[fit][:, idx] > 1e-8
        pred_fit = pred[fit]
        prior = pred_fit.mean(0)
        for k, col in enumerate(idx):
            own_fit = pred_fit[fires[:, k], k]
            if len(own_fit):
                top = np.quantile(own_fit, plateau)
                silent = pred_fit[~fires[:, k], k]
                level = np.quantile(silent, plateau) if reference == "absent" and len(silent) else prior[k]
                threshold[col] = level + fraction * (top - level)
        weights[idx] = w
    return ProbePartners(side, weights, threshold, r2, r2_floor)
