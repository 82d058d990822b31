"""Non-negative contrastive learning (NCL) heads on frozen CLIP embeddings (Wang et al., ICLR 2024,
arXiv:2403.12459).

One linear map, shared by both modalities, followed by rep-ReLU: a ReLU in the forward pass whose
backward pass uses GELU's gradient, so units that are switched off still learn. The head is trained
with the CLIP loss on (image, text) embedding pairs, so its non-negative features are comparable across
modalities, which is what MDS needs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm


class _RepReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.relu(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
        pdf = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return grad * (cdf + x * pdf)  # d/dx GELU(x)


def rep_relu(x: torch.Tensor) -> torch.Tensor:
    """ReLU forward, GELU gradient backward."""
    return _RepReLU.apply(x)


@dataclass(frozen=True)
class NCLConfig:
    """An NCL head and how it is trained."""

    n_features: int = 256
    steps: int = 1500
    batch_size: int = 512
    lr: float = 1e-3
    temperature: float = 0.05
    seed: int = 0


class NCLHead(nn.Module):
    """features(e) = rep-ReLU(W e + b), the same map for image and text embeddings."""

    def __init__(self, d_in: int, cfg: NCLConfig):
        super().__init__()
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.linear = nn.Linear(d_in, cfg.n_features)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return rep_relu(self.linear(F.normalize(e.float(), dim=-1)))


def clip_loss(fx: torch.Tensor, fy: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE on normalised features; row i of fx matches row i of fy."""
    logits = F.normalize(fx, dim=-1) @ F.normalize(fy, dim=-1).T / temperature
    labels = torch.arange(len(fx))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def train_ncl(x: torch.Tensor, y: torch.Tensor, cfg: NCLConfig, progress: bool = True) -> tuple[NCLHead, pd.DataFrame]:
    """Train an NCL head on paired embeddings (row i of x with row i of y), streaming minibatches."""
    if x.shape != y.shape:
        raise ValueError(f"NCL needs paired embeddings of one shape, got {tuple(x.shape)} and {tuple(y.shape)}.")
    head = NCLHead(x.shape[1], cfg)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    rows = []
    for step in tqdm(range(cfg.steps), desc="training NCL", disable=not progress, mininterval=2):
        idx = torch.as_tensor(rng.choice(len(x), min(cfg.batch_size, len(x)), replace=False))
        loss = clip_loss(head(x[idx]), head(y[idx]), cfg.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == cfg.steps - 1:
            rows.append({"step": step, "loss": loss.item()})
    head.eval()
    return head, pd.DataFrame(rows)
