"""Sparse autoencoders on CLIP embeddings of both modalities together.

Variants are small frozen configs (`TopK`, `BatchTopK`, `ReLU`) dispatched by one function, as in
saev. Every variant has a unit-norm decoder (rows renormalised after each step, with the gradient
component parallel to each row removed first), a pre-bias initialised from the data (geometric
median) and, for the TopK family, the AuxK loss of Gao et al. (2024, arXiv:2406.04093) that lets dead
latents learn from the residual. Training streams minibatches; metrics are reported per modality.

Paired training (`train_paired_sae`) fits one SAE to matched image-caption pairs and adds a pairing
objective (`Alignment`, `IsoEnergy`) or a shared support (`SharedTopK`) so that a concept shown in an
image and named in its caption gets one latent rather than an image-side and a caption-side one.
"""
from __future__ import annotations

import dataclasses
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from tqdm.auto import tqdm


def _check_k(cfg):
    if not isinstance(cfg.k, numbers.Integral) or isinstance(cfg.k, bool) or cfg.k < 1:
        raise ValueError(f"{type(cfg).__name__}.k must be a positive integer, got {cfg.k!r}.")


@dataclass(frozen=True)
class TopK:
    """Keep each sample's k largest pre-activations (Gao et al., 2024)."""

    k: int = 8

    def __post_init__(self):
        _check_k(self)


@dataclass(frozen=True)
class BatchTopK:
    """Keep the k * batch largest pre-activations of the whole batch (Bussmann et al., 2024); at
    inference a threshold, the running mean of the smallest kept value, replaces the batch rule."""

    k: int = 8

    def __post_init__(self):
        _check_k(self)


@dataclass(frozen=True)
class ReLU:
    """ReLU latents with an L1 penalty on the activations (the classic dictionary-learning SAE)."""

    l1: float = 3e-3


@dataclass(frozen=True)
class SharedTopK:
    """One TopK support per image-caption pair (SPARC's global TopK, arXiv:2507.06265): the k latents with the
    largest summed pre-activation `pre(image) + pre(caption)` fire on both sides, each side keeping its own
    value (the ReLU of its own pre-activation) there. Only `train_paired_sae` and `encode_pair` see pairs; on one
    modality alone (`encode`, `metrics`, feature sets) there is no partner, and it is the plain `TopK(k)`."""

    k: int = 8

    def __post_init__(self):
        _check_k(self)


@dataclass(frozen=True)
class Bilingual:
    """A bilingual dictionary (SPARC, arXiv:2507.06265; VL-SAE): each modality has its own encoder, decoder and
    pre-bias, and one TopK support per image-caption pair, the k latents with the largest summed pre-activation
    of the two encoders, each side keeping the ReLU of its own pre-activation there. Each side reconstructs
    itself from its own decoder, so a concept can sit at different directions in the two modalities (across
    the gap) and still be one latent; no loss term rewards the two codes for agreeing, but the shared support
    lets one side's encoder choose latents for the other (chapter 4 measures how often a caption side then
    fires without its concept). It codes pairs only (`encode_pair`)."""

    k: int = 8

    def __post_init__(self):
        _check_k(self)


Activation = TopK | BatchTopK | ReLU | SharedTopK | Bilingual
SHARED_SUPPORT = (SharedTopK, Bilingual)
"""Activations that choose one support per pair, so they code matched pairs only."""


# Pairing objectives of aligned SAEs (Dhimoïla, Fel, Boutin, Picard, ICLR 2026, arXiv:2602.06218; reference code
# Parabrele/IsoEnergy, src/losses.py, written afresh here). Our reconstruction term is FVU(image) + FVU(caption)
# (squared error over each side's batch variance), the reference's a per-element MSE about 2d/v times smaller, so
# their coefficients carry over only after that rescaling (see each docstring).

@dataclass(frozen=True)
class Alignment:
    """Alignment penalty: minus beta times the mean cosine between each pair's image and caption codes, computed
    after zeroing, on both sides, the image's top-1 and the caption's top-1 latent (those tend to be modality
    latents; the penalty rewards agreement on the rest). Needs k >= 3 to leave something to align.

    beta = 0.1 by default: the reference's 4e-4 (CLIP B/32) carried over to our loss. Their reconstruction term is
    the per-element MSE of the stacked batch, (SSE_img + SSE_txt) / (2 n d); ours is SSE_img / (n v_img) +
    SSE_txt / (n v_txt), about 2d/v times larger (v, the per-modality variance of unit embeddings, is about 0.5 for
    CLIP and for the book's small CLIP). The same balance is beta = 4e-4 * 2d / v: about 0.1 at the book's
    d = 64, about 0.8 at d = 512; scale it so for other models. On the book's default world (its small CLIP,
    10,000 pairs, 256 latents, k = 8, 600 steps, seed 0; measured 2026-11-25) beta 0.1 / 0.3 / 1 raise the mean
    cosine between paired codes from 0.03 (plain TopK SAE) to 0.44 / 0.93 / 0.95 and the share of code energy on
    bimodal latents from 0.06 to 0.58 / 0.97 / 0.99, at an image FVU of 0.046 / 0.064 / 0.089 against 0.034."""

    beta: float = 0.1

    def __post_init__(self):
        if not isinstance(self.beta, (int, float)) or isinstance(self.beta, bool) or not self.beta >= 0:
            raise ValueError(f"Alignment.beta must be a non-negative number, got {self.beta!r}.")


@dataclass(frozen=True)
class IsoEnergy:
    """IsoEnergy loss times coef: `mean_j |E_img,j - E_txt,j| / (E_img,j + E_txt,j + 1e-5)` with `E_.,j` the mean of
    z_j^2 over the batch's images or captions; 0 when every latent carries the same energy on both sides, 1 when
    every latent fires on one side only. It needs no pairing of rows, only a batch of each modality.

    coef = 1.0 by default. The reference calls 0.1 a typical strength next to its per-element MSE, which is
    about 2d/v times smaller than our two FVUs (d the dimension, v the per-modality variance, about 0.5 for unit
    CLIP embeddings): 0.1 there is about 20 here at d = 64, a near-hard constraint. On the book's default world
    (as for Alignment: 10,000 pairs, 256 latents, k = 8, 600 steps, seed 0; measured 2026-11-25) coef 0.1 / 1 / 3
    take the IsoEnergy of the codes from 0.44 (plain TopK SAE) to 0.16 / 0.04 / 0.03 and the share of bimodal
    latents from 0.28 to 0.22 / 0.77 / 0.89, at an image FVU of 0.033 / 0.059 / 0.089 against 0.034: 0.1 balances
    energies without making latents bimodal, 1 does both at about the reconstruction cost of Alignment's default."""

    coef: float = 1.0

    def __post_init__(self):
        if not isinstance(self.coef, (int, float)) or isinstance(self.coef, bool) or not self.coef >= 0:
            raise ValueError(f"IsoEnergy.coef must be a non-negative number, got {self.coef!r}.")


Pairing = Alignment | IsoEnergy


@dataclass(frozen=True)
class SAEConfig:
    """An SAE and how it is trained."""

    n_latents: int = 256
    activation: Activation = field(default_factory=TopK)
    steps: int = 2000
    batch_size: int = 512
    lr: float = 2e-3
    aux_k: int = 64
    """Dead latents the AuxK loss uses (TopK and BatchTopK only; 0 turns it off)."""
    aux_coef: float = 1 / 32
    dead_after: int = 20_000
    """A latent that has not fired for this many samples counts as dead."""
    seed: int = 0
    pairing: Pairing | None = None
    """Pairing objective of `train_paired_sae` (Alignment, IsoEnergy) or None. Left None, every earlier config,
    its trained weights and its cache key (`features.sets._key` drops a None pairing) stay as they were."""

    def __post_init__(self):
        act = self.activation
        if not isinstance(act, (TopK, BatchTopK, ReLU, SharedTopK, Bilingual)):
            raise ValueError(f"Unknown SAE activation {act!r}. Available: TopK, BatchTopK, ReLU, SharedTopK, "
                             "Bilingual.")
        if self.pairing is not None and not isinstance(self.pairing, (Alignment, IsoEnergy)):
            raise ValueError(f"Unknown pairing {self.pairing!r}. Available: Alignment, IsoEnergy, None.")
        k = getattr(act, "k", None)
        if isinstance(self.pairing, Alignment) and k is not None and k < 3:
            warnings.warn(f"Alignment zeroes each pair's top-1 image and top-1 caption latents before comparing codes; "
                          f"with k = {k} little or nothing is left to align. Use k >= 3.", stacklevel=3)


def _check_trainable(cfg: SAEConfig):
    # Checked when training starts, not in SAEConfig, so that an unused default (k = 8 with 4 latents) stays legal.
    if isinstance(cfg.activation, (TopK,) + SHARED_SUPPORT) and cfg.activation.k > cfg.n_latents:
        raise ValueError(f"{type(cfg.activation).__name__}.k = {cfg.activation.k} is larger than n_latents = "
                         f"{cfg.n_latents}; use k <= n_latents.")


def is_paired(cfg: SAEConfig) -> bool:
    """Whether cfg trains on matched pairs (a pairing objective, SharedTopK or Bilingual): `train_paired_sae`."""
    return cfg.pairing is not None or isinstance(cfg.activation, SHARED_SUPPORT)


def geometric_median(x: torch.Tensor, iters: int = 50, eps: float = 1e-6) -> torch.Tensor:
    """Weiszfeld's algorithm: the point minimising the summed distance to the rows of x."""
    m = x.mean(0)
    for _ in range(iters):
        w = 1 / (x - m).norm(dim=1).clamp_min(eps)
        new = (w[:, None] * x).sum(0) / w.sum()
        if (new - m).norm() < eps:
            break
        m = new
    return m


class SparseAutoencoder(nn.Module):
    """x -> z = act(W_enc (x - b_pre) + b_enc) -> x_hat = z W_dec + b_pre, with unit-norm rows of W_dec."""

    def __init__(self, d_in: int, cfg: SAEConfig):
        super().__init__()
        self.cfg = cfg
        g = torch.Generator().manual_seed(cfg.seed)
        w = torch.randn(cfg.n_latents, d_in, generator=g)
        w = w / w.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w.clone())
        self.W_enc = nn.Parameter(w.T.clone())  # tied at init, as in Gao et al.
        self.b_enc = nn.Parameter(torch.zeros(cfg.n_latents))
        self.b_pre = nn.Parameter(torch.zeros(d_in))
        self.register_buffer("threshold", torch.tensor(0.0))  # BatchTopK's inference threshold
        if isinstance(cfg.activation, Bilingual):  # the caption side's own encoder, decoder and pre-bias
            self.W_dec_txt = nn.Parameter(w.clone())
            self.W_enc_txt = nn.Parameter(w.T.clone())
            self.b_enc_txt = nn.Parameter(torch.zeros(cfg.n_latents))
            self.b_pre_txt = nn.Parameter(torch.zeros(d_in))

    @property
    def bilingual(self) -> bool:
        return isinstance(self.cfg.activation, Bilingual)

    def decoders(self) -> tuple[nn.Parameter, ...]:
        """The decoder matrices (one, or the image's and the caption's for a bilingual dictionary)."""
        return (self.W_dec, self.W_dec_txt) if self.bilingual else (self.W_dec,)

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.b_pre) @ self.W_enc + self.b_enc

    def pre_activations_pair(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-activations of matched pairs: the caption side through its own encoder when bilingual."""
        if self.bilingual:
            return self.pre_activations(x), (y - self.b_pre_txt) @ self.W_enc_txt + self.b_enc_txt
        return self.pre_activations(x), self.pre_activations(y)

    def decode_pair(self, z_x: torch.Tensor, z_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstructions of matched pairs: the caption side through its own decoder when bilingual."""
        if self.bilingual:
            return self.decode(z_x), z_y @ self.W_dec_txt + self.b_pre_txt
        return self.decode(z_x), self.decode(z_y)

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        act = self.cfg.activation
        if isinstance(act, (TopK, SharedTopK)):  # SharedTopK on one modality alone: no partner, plain TopK
            vals, idx = torch.relu(pre).topk(act.k, dim=-1)
            return torch.zeros_like(pre).scatter(-1, idx, vals)
        if isinstance(act, BatchTopK):
            pre = torch.relu(pre)
            if not self.training:
                return pre * (pre > self.threshold)
            n_keep = min(act.k * len(pre), pre.numel())
            vals, idx = pre.flatten().topk(n_keep)
            with torch.no_grad():
                smallest = vals[-1].clamp_min(0)
                self.threshold.mul_(0.99).add_(0.01 * smallest) if self.threshold > 0 else self.threshold.fill_(smallest)
            return torch.zeros_like(pre).flatten().scatter(0, idx, vals).view_as(pre)
        if isinstance(act, ReLU):
            return torch.relu(pre)
        raise TypeError(f"Unknown SAE activation {act!r}; use TopK, BatchTopK, ReLU or SharedTopK.")

    def activate_pair(self, pre_x: torch.Tensor, pre_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes of matched pairs from their pre-activations (n, n_latents) each: with SharedTopK one support
        per pair (top k of pre_x + pre_y), each side keeping ReLU of its own pre-activation there; otherwise
        `activate` on both sides stacked (so BatchTopK ranks the images and captions of the batch together)."""
        act = self.cfg.activation
        if isinstance(act, SHARED_SUPPORT):
            idx = (pre_x + pre_y).topk(act.k, dim=-1).indices
            z_x = torch.zeros_like(pre_x).scatter(-1, idx, torch.relu(pre_x.gather(-1, idx)))
            z_y = torch.zeros_like(pre_y).scatter(-1, idx, torch.relu(pre_y.gather(-1, idx)))
            return z_x, z_y
        return self.activate(torch.cat([pre_x, pre_y])).split(len(pre_x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes of one modality (images or captions). SharedTopK acts as TopK here: a lone side has no partner
        (feature sets refuse it, `features.sae_features`); a bilingual dictionary codes pairs only."""
        if self.bilingual:
            raise ValueError("A bilingual dictionary codes matched pairs only: use encode_pair(x, y).")
        return self.activate(self.pre_activations(x))

    def encode_pair(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes of matched pairs (row i of x with row i of y); with SharedTopK the two sides share one support."""
        assert x.shape == y.shape, f"encode_pair needs matched pairs, got shapes {tuple(x.shape)} and {tuple(y.shape)}"
        return self.activate_pair(*self.pre_activations_pair(x, y))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec + self.b_pre

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z)

    @torch.no_grad()
    def normalize_decoder(self):
        for w in self.decoders():
            w.data /= w.data.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def remove_parallel_grad(self):
        """Drop the part of each decoder row's gradient that would only change its norm."""
        for dec in self.decoders():
            if dec.grad is not None:
                dec.grad -= (dec.grad * dec.data).sum(1, keepdim=True) * dec.data


def _loss(sae: SparseAutoencoder, x: torch.Tensor, since_fired: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pre = sae.pre_activations(x)
    z = sae.activate(pre)
    return _reconstruction_loss(sae, x, pre, z, since_fired), z


def _reconstruction_loss(sae: SparseAutoencoder, x: torch.Tensor, pre: torch.Tensor, z: torch.Tensor,
                         since_fired: torch.Tensor) -> torch.Tensor:
    """Squared error over the batch's variance, plus the ReLU variant's L1 or the AuxK term on dead latents."""
    x_hat = sae.decode(z)
    var = (x - x.mean(0)).pow(2).sum()
    loss = (x - x_hat).pow(2).sum() / var
    cfg = sae.cfg
    if isinstance(cfg.activation, ReLU):
        loss = loss + cfg.activation.l1 * z.abs().sum(1).mean()
    dead = since_fired >= cfg.dead_after
    if cfg.aux_k and not isinstance(cfg.activation, ReLU) and dead.any():
        k = min(cfg.aux_k, int(dead.sum()))
        vals, idx = torch.relu(pre.masked_fill(~dead, -torch.inf)).topk(k, dim=-1)
        resid = (x - x_hat).detach()
        resid_hat = torch.zeros_like(pre).scatter(-1, idx, vals) @ sae.W_dec
        loss = loss + cfg.aux_coef * (resid - resid_hat).pow(2).sum() / var
    return loss


def _step(sae: SparseAutoencoder, opt, sched, loss: torch.Tensor) -> None:
    """One optimiser step with a unit-norm decoder: drop the norm-changing gradient, step, renormalise."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    sae.remove_parallel_grad()
    opt.step()
    sched.step()
    sae.normalize_decoder()


def optimizer(sae: SparseAutoencoder, cfg: SAEConfig):
    """Adam and the schedule of every SAE here: the learning rate flat, then decaying linearly to 0 over the last
    10% of cfg.steps. Returns (optimiser, scheduler)."""
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, 10 * (1 - s / cfg.steps)))


def batch_loss(sae: SparseAutoencoder, batch: torch.Tensor, since_fired: torch.Tensor, paired: bool = False):
    """Training loss of one batch, as (loss, reconstruction term, pairing term, z_x, z_y): `train_sae`'s on a batch of
    embeddings (z_y None) or, paired, `train_paired_sae`'s on a stacked batch [images; captions]."""
    if paired:
        return _paired_loss(sae, batch, since_fired)
    loss, z = _loss(sae, batch, since_fired)
    return loss, loss, loss.new_zeros(()), z, None


def train_step(sae: SparseAutoencoder, opt, sched, batch: torch.Tensor, since_fired: torch.Tensor,
               paired: bool = False, loss_fn=None):
    """One step of `train_sae` / `train_paired_sae` (and of `mdsgap train-sae`): `batch_loss`, or loss_fn with its
    signature (the pipeline's DistributedDataParallel wrapper), then a unit-norm decoder step; returns the loss tuple."""
    out = (loss_fn or batch_loss)(sae, batch, since_fired, paired)
    _step(sae, opt, sched, out[0])
    return out


def train_sae(x: torch.Tensor, cfg: SAEConfig, progress: bool = True) -> tuple[SparseAutoencoder, pd.DataFrame]:
    """Train on minibatches drawn from the rows of x (image and text embeddings stacked); returns the
    SAE and a loss curve. Configs with a pairing or SharedTopK need the pairs: use `train_paired_sae`."""
    if is_paired(cfg):
        raise ValueError("This config pairs images with captions (pairing or SharedTopK); train it with "
                         "train_paired_sae(x_img, x_txt, cfg) on the matched pairs.")
    _check_trainable(cfg)
    torch.manual_seed(cfg.seed)
    x = x.float()
    sae = SparseAutoencoder(x.shape[1], cfg)
    rng = np.random.default_rng(cfg.seed)
    with torch.no_grad():
        sample = x[torch.as_tensor(rng.choice(len(x), min(len(x), 4096), replace=False))]
        sae.b_pre.copy_(geometric_median(sample))
    opt, sched = optimizer(sae, cfg)
    since_fired = torch.zeros(cfg.n_latents)
    rows = []
    sae.train()
    for step in tqdm(range(cfg.steps), desc="training SAE", disable=not progress, mininterval=2):
        batch = x[torch.as_tensor(rng.integers(0, len(x), cfg.batch_size))]
        loss, _, _, z, _ = train_step(sae, opt, sched, batch, since_fired)
        fired = (z > 0).any(0)
        since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + len(batch))
        if step % 50 == 0 or step == cfg.steps - 1:
            rows.append({"step": step, "loss": loss.item(), "dead": float((since_fired >= cfg.dead_after).float().mean())})
    sae.eval()
    return sae, pd.DataFrame(rows)


def masked_pair_cosine(z_x: torch.Tensor, z_y: torch.Tensor) -> torch.Tensor:
    """Mean cosine between paired codes after zeroing, on both sides, each pair's top-1 image latent and top-1
    caption latent (the alignment penalty's similarity; a pair left with a zero code counts 0)."""
    keep = torch.ones_like(z_x).scatter_(1, z_x.detach().argmax(1, keepdim=True), 0.0)
    keep.scatter_(1, z_y.detach().argmax(1, keepdim=True), 0.0)
    a, b = z_x * keep, z_y * keep
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-8)).mean()


def isoenergy(z_x: torch.Tensor, z_y: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """mean_j |E_x,j - E_y,j| / (E_x,j + E_y,j + eps), E_.,j the batch mean of z_j^2 on each side: 0 when every
    latent carries equal energy on both sides, 1 when each fires on one side only."""
    e_x, e_y = z_x.pow(2).mean(0), z_y.pow(2).mean(0)
    return ((e_x - e_y).abs() / (e_x + e_y + eps)).mean()


def pairing_loss(pairing: Pairing | None, z_x: torch.Tensor, z_y: torch.Tensor) -> torch.Tensor:
    """The pairing term added to the reconstruction loss, coefficient included (0 without a pairing)."""
    if pairing is None:
        return z_x.new_zeros(())
    if isinstance(pairing, Alignment):
        return -pairing.beta * masked_pair_cosine(z_x, z_y)
    if isinstance(pairing, IsoEnergy):
        return pairing.coef * isoenergy(z_x, z_y)
    raise TypeError(f"Unknown pairing {pairing!r}; use Alignment, IsoEnergy or None.")


def _paired_loss(sae: SparseAutoencoder, xy: torch.Tensor, since_fired: torch.Tensor):
    """Loss of a stacked batch of n pairs, xy = [images; captions] (2n, d): `_reconstruction_loss` of each half
    (its own variance, L1 or AuxK), summed, plus the pairing term; one encode and one decode for both halves."""
    n = len(xy) // 2
    cfg = sae.cfg
    pre = torch.cat(sae.pre_activations_pair(xy[:n], xy[n:])) if sae.bilingual else sae.pre_activations(xy)
    shared = isinstance(cfg.activation, SHARED_SUPPORT)
    z = torch.cat(sae.activate_pair(pre[:n], pre[n:])) if shared else sae.activate(pre)
    x_hat = torch.cat(sae.decode_pair(z[:n], z[n:])) if sae.bilingual else sae.decode(z)
    halves = xy.view(2, n, -1)
    var = (halves - halves.mean(1, keepdim=True)).pow(2).sum((1, 2))  # (2,): each modality's batch variance
    recon = ((xy - x_hat).pow(2).view(2, n, -1).sum((1, 2)) / var).sum()
    if isinstance(cfg.activation, ReLU):
        recon = recon + cfg.activation.l1 * z.abs().sum(1).view(2, n).mean(1).sum()
    dead = since_fired >= cfg.dead_after
    if cfg.aux_k and not isinstance(cfg.activation, ReLU) and dead.any():
        k = min(cfg.aux_k, int(dead.sum()))
        vals, idx = torch.relu(pre.masked_fill(~dead, -torch.inf)).topk(k, dim=-1)
        aux_z = torch.zeros_like(pre).scatter(-1, idx, vals)
        if sae.bilingual:
            resid_hat = torch.cat([aux_z[:n] @ sae.W_dec, aux_z[n:] @ sae.W_dec_txt])
        else:
            resid_hat = aux_z @ sae.W_dec
        aux = ((xy - x_hat).detach() - resid_hat).pow(2).view(2, n, -1).sum((1, 2))
        recon = recon + cfg.aux_coef * (aux / var).sum()
    pair = pairing_loss(cfg.pairing, z[:n], z[n:])
    return recon + pair, recon, pair, z[:n], z[n:]


def train_paired_sae(x: torch.Tensor, y: torch.Tensor, cfg: SAEConfig,
                     progress: bool = True) -> tuple[SparseAutoencoder, pd.DataFrame]:
    """Train one SAE on matched pairs: row i of x (an image embedding) with row i of y (its caption's).

    Each step draws cfg.batch_size // 2 pairs, so a step sees cfg.batch_size embeddings as in `train_sae`.
    The loss is the reconstruction of the images plus that of the captions, each over its own batch variance
    with its AuxK term (or L1, for ReLU), plus `pairing_loss(cfg.pairing, ...)`; with a `SharedTopK` activation
    the two sides of a pair share one support. The pre-bias, decoder constraint, optimiser and schedule are
    `train_sae`'s.

    Returns:
        The SAE (eval mode) and a curve with columns step, loss, recon (both reconstruction terms), pairing
        (the pairing term as added to the loss), cosine (mean cosine between the batch's paired codes) and
        dead (fraction of dead latents).
    """
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"train_paired_sae needs matched pairs: x and y of the same (n, d) shape, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}.")
    _check_trainable(cfg)
    if cfg.batch_size < 2:
        raise ValueError(f"batch_size must be at least 2 (one pair), got {cfg.batch_size}.")
    torch.manual_seed(cfg.seed)
    x, y = x.float(), y.float()
    sae = SparseAutoencoder(x.shape[1], cfg)
    rng = np.random.default_rng(cfg.seed)
    pairs = torch.stack([x, y])  # (2, N, d): one gather per step gives [images; captions] of the same rows
    with torch.no_grad():
        both = pairs.view(-1, x.shape[1])
        sample = both[torch.as_tensor(rng.choice(len(both), min(len(both), 4096), replace=False))]
        sae.b_pre.copy_(geometric_median(sample))
        if sae.bilingual:  # each side centred on its own median
            pick = torch.as_tensor(rng.choice(len(x), min(len(x), 4096), replace=False))
            sae.b_pre.copy_(geometric_median(x[pick]))
            sae.b_pre_txt.copy_(geometric_median(y[pick]))
    opt, sched = optimizer(sae, cfg)
    since_fired = torch.zeros(cfg.n_latents)
    n_pairs = cfg.batch_size // 2
    rows = []
    sae.train()
    for step in tqdm(range(cfg.steps), desc="training paired SAE", disable=not progress, mininterval=2):
        idx = torch.as_tensor(rng.integers(0, len(x), n_pairs))
        batch = pairs[:, idx].view(2 * n_pairs, -1)
        loss, recon, pair, z_x, z_y = train_step(sae, opt, sched, batch, since_fired, paired=True)
        fired = (z_x > 0).any(0) | (z_y > 0).any(0)
        since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + 2 * n_pairs)
        if step % 50 == 0 or step == cfg.steps - 1:
            with torch.no_grad():
                cosine = torch.nn.functional.cosine_similarity(z_x, z_y, dim=1).mean()
            rows.append({"step": step, "loss": loss.item(), "recon": recon.item(), "pairing": pair.item(),
                         "cosine": cosine.item(), "dead": float((since_fired >= cfg.dead_after).float().mean())})
    sae.eval()
    return sae, pd.DataFrame(rows)


@torch.no_grad()
def metrics(sae: SparseAutoencoder, x: torch.Tensor, batch_size: int = 4096) -> dict[str, float]:
    """L0 (mean active latents per sample), FVU (fraction of variance unexplained) and dead fraction."""
    x = x.float()
    sq_err, l0, fired = 0.0, 0.0, torch.zeros(sae.cfg.n_latents, dtype=torch.bool)
    for chunk in x.split(batch_size):
        z, x_hat = sae(chunk)
        sq_err += float((chunk - x_hat).pow(2).sum())
        l0 += float((z > 0).sum())
        fired |= (z > 0).any(0)
    var = float((x - x.mean(0)).pow(2).sum())
    return {"L0": l0 / len(x), "FVU": sq_err / var, "dead fraction": float((~fired).float().mean())}


def metrics_by_modality(sae: SparseAutoencoder, x_img: torch.Tensor, x_txt: torch.Tensor) -> pd.DataFrame:
    """`metrics` for images, texts and both together, one row each."""
    rows = {"image": metrics(sae, x_img), "text": metrics(sae, x_txt), "both": metrics(sae, torch.cat([x_img, x_txt]))}
    return pd.DataFrame(rows).T


@torch.no_grad()
def paired_metrics(sae: SparseAutoencoder, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096,
                   band: tuple[float, float] = (0.05, 0.95)) -> dict[str, float]:
    """On matched pairs encoded with `encode_pair`: FVU and L0 of images and of captions, the mean cosine
    between paired codes, the mean Jaccard overlap of their supports, the share of live latents that are
    bimodal, i.e. whose energy modality score E_img[z^2] / (E_img[z^2] + E_txt[z^2]) lies within `band`
    (Dhimoïla et al. 2026 use 0.05-0.95), and the share of all code energy those bimodal latents carry."""
    x, y = x.float(), y.float()
    out = {"image FVU": 0.0, "text FVU": 0.0, "image L0": 0.0, "text L0": 0.0, "paired cosine": 0.0, "support overlap": 0.0}
    e_x, e_y = torch.zeros(sae.cfg.n_latents), torch.zeros(sae.cfg.n_latents)
    for cx, cy in zip(x.split(batch_size), y.split(batch_size)):
        z_x, z_y = sae.encode_pair(cx, cy)
        x_hat, y_hat = sae.decode_pair(z_x, z_y)
        out["image FVU"] += float((cx - x_hat).pow(2).sum())
        out["text FVU"] += float((cy - y_hat).pow(2).sum())
        a, b = z_x > 0, z_y > 0
        out["image L0"] += float(a.sum())
        out["text L0"] += float(b.sum())
        out["paired cosine"] += float(torch.nn.functional.cosine_similarity(z_x, z_y, dim=1).sum())
        out["support overlap"] += float(((a & b).sum(1) / (a | b).sum(1).clamp_min(1)).sum())
        e_x += z_x.pow(2).sum(0)
        e_y += z_y.pow(2).sum(0)
    out["image FVU"] /= float((x - x.mean(0)).pow(2).sum())
    out["text FVU"] /= float((y - y.mean(0)).pow(2).sum())
    for name in ("image L0", "text L0", "paired cosine", "support overlap"):
        out[name] /= len(x)
    energy = e_x + e_y
    live = energy > 0
    bimodal = live & (e_x >= band[0] * energy) & (e_x <= band[1] * energy)
    out["bimodal share"] = float(bimodal.sum() / live.sum().clamp_min(1))
    out["bimodal energy"] = float(energy[bimodal].sum() / energy.sum().clamp_min(1e-12))
    return out


def describe(cfg: SAEConfig) -> str:
    """A short name for tables: 'TopK(k=8), 256 latents', then the pairing if any: ', Alignment(beta=0.1)'."""
    def name(c):
        return f"{type(c).__name__}(" + ", ".join(f"{f.name}={getattr(c, f.name)}" for f in dataclasses.fields(c)) + ")"
    text = f"{name(cfg.activation)}, {cfg.n_latents} latents"
    return text if cfg.pairing is None else f"{text}, {name(cfg.pairing)}"
