"""Sparse autoencoders on CLIP embeddings of both modalities together.

Variants are small frozen configs (`TopK`, `BatchTopK`, `ReLU`) dispatched by one function, as in
saev. Every variant has a unit-norm decoder (rows renormalised after each step, with the gradient
component parallel to each row removed first), a pre-bias initialised from the data (geometric
median) and, for the TopK family, the AuxK loss of Gao et al. (2024, arXiv:2406.04093) that lets dead
latents learn from the residual. Training streams minibatches; metrics are reported per modality.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from tqdm.auto import tqdm


@dataclass(frozen=True)
class TopK:
    """Keep each sample's k largest pre-activations (Gao et al., 2024)."""

    k: int = 8


@dataclass(frozen=True)
class BatchTopK:
    """Keep the k * batch largest pre-activations of the whole batch (Bussmann et al., 2024); at
    inference a threshold, the running mean of the smallest kept value, replaces the batch rule."""

    k: int = 8


@dataclass(frozen=True)
class ReLU:
    """ReLU latents with an L1 penalty on the activations (the classic dictionary-learning SAE)."""

    l1: float = 3e-3


Activation = TopK | BatchTopK | ReLU


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

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.b_pre) @ self.W_enc + self.b_enc

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        act = self.cfg.activation
        if isinstance(act, TopK):
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
        raise TypeError(f"Unknown SAE activation {act!r}; use TopK, BatchTopK or ReLU.")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.pre_activations(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec + self.b_pre

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z)

    @torch.no_grad()
    def normalize_decoder(self):
        self.W_dec.data /= self.W_dec.data.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def remove_parallel_grad(self):
        """Drop the part of each decoder row's gradient that would only change its norm."""
        if self.W_dec.grad is not None:
            w = self.W_dec.data
            self.W_dec.grad -= (self.W_dec.grad * w).sum(1, keepdim=True) * w


def _loss(sae: SparseAutoencoder, x: torch.Tensor, since_fired: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pre = sae.pre_activations(x)
    z = sae.activate(pre)
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
    return loss, z


def train_sae(x: torch.Tensor, cfg: SAEConfig, progress: bool = True) -> tuple[SparseAutoencoder, pd.DataFrame]:
    """Train on minibatches drawn from the rows of x (image and text embeddings stacked); returns the
    SAE and a loss curve."""
    torch.manual_seed(cfg.seed)
    x = x.float()
    sae = SparseAutoencoder(x.shape[1], cfg)
    rng = np.random.default_rng(cfg.seed)
    with torch.no_grad():
        sample = x[torch.as_tensor(rng.choice(len(x), min(len(x), 4096), replace=False))]
        sae.b_pre.copy_(geometric_median(sample))
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, 10 * (1 - s / cfg.steps)))
    since_fired = torch.zeros(cfg.n_latents)
    rows = []
    sae.train()
    for step in tqdm(range(cfg.steps), desc="training SAE", disable=not progress, mininterval=2):
        batch = x[torch.as_tensor(rng.integers(0, len(x), cfg.batch_size))]
        loss, z = _loss(sae, batch, since_fired)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sae.remove_parallel_grad()
        opt.step()
        sched.step()
        sae.normalize_decoder()
        fired = (z > 0).any(0)
        since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + len(batch))
        if step % 50 == 0 or step == cfg.steps - 1:
            rows.append({"step": step, "loss": loss.item(), "dead": float((since_fired >= cfg.dead_after).float().mean())})
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


def describe(cfg: SAEConfig) -> str:
    """A short name for tables: 'TopK(k=8), 256 latents'."""
    act = cfg.activation
    params = ", ".join(f"{f.name}={getattr(act, f.name)}" for f in dataclasses.fields(act))
    return f"{type(act).__name__}({params}), {cfg.n_latents} latents"
