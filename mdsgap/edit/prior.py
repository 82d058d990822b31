"""From a caption's embedding to the image side of the gap, so an image decoder can draw a caption.

unCLIP (Ramesh et al. 2022) puts a prior between the caption and the image embedding; at the world's
scale there are two: the gap shift, which moves a unit caption embedding by the difference of the two
modalities' means (Liang et al. 2022), and a small MLP trained on matched pairs to predict the image
embedding's direction (cosine loss).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def gap_shift(y: torch.Tensor, x_ref: torch.Tensor, y_ref: torch.Tensor) -> torch.Tensor:
    """Unit caption embeddings y moved by the gap vector mean(x_ref) - mean(y_ref) of unit reference pairs."""
    u = lambda e: F.normalize(e.float(), dim=-1)
    return F.normalize(u(y) + u(x_ref).mean(0) - u(y_ref).mean(0), dim=-1)


def cosines(pred: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """Per pair, the cosine of a prior's output to the caption's own image embedding: how far across the
    gap a route lands, read without drawing anything."""
    return F.cosine_similarity(pred.float(), x.float(), dim=-1).detach().double().numpy()


class MLPPrior(nn.Module):
    """Caption embedding -> predicted unit image embedding; a residual MLP on top of the gap shift's start."""

    def __init__(self, d: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, d))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        u = F.normalize(y.float(), dim=-1)
        return F.normalize(u + self.net(u), dim=-1)


def train_prior(x: torch.Tensor, y: torch.Tensor, steps: int = 600, batch_size: int = 256, lr: float = 2e-3,
                seed: int = 0) -> MLPPrior:
    """Fit the MLP prior on matched pairs (x images, y captions) by maximising the cosine to the image."""
    if len(x) != len(y):
        raise ValueError(f"x and y must be matched pairs; got {len(x)} images and {len(y)} captions.")
    torch.manual_seed(seed)
    model = MLPPrior(x.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    target = F.normalize(x.float(), dim=-1)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        loss = 1 - (model(y[idx]) * target[idx]).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()
