"""The cone effect at random initialisation (Liang et al., 2022).

A randomly initialised network already maps its inputs into a narrow cone: the mean cosine similarity of
its outputs grows with depth when the layers have a nonlinearity, and every initialisation gives its own
cone. These helpers build the random networks and measure the cones; `gap.cone` is the measure.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mdsgap import gap


def random_mlp(d_in: int, width: int, depth: int, nonlinear: bool = True, seed: int = 0) -> nn.Sequential:
    """depth bias-free Linear layers, each followed by a ReLU when nonlinear.

    Weights are Gaussian with the variance that keeps the signal's scale (2/fan_in before a ReLU, 1/fan_in
    without), so a narrowing cone comes from the nonlinearity, not from a shrinking signal that biases swamp.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}.")
    g = torch.Generator().manual_seed(seed)
    layers = []
    for i in range(depth):
        layer = nn.Linear(d_in if i == 0 else width, width, bias=False)
        fan_in = layer.in_features
        with torch.no_grad():
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * ((2.0 if nonlinear else 1.0) / fan_in) ** 0.5)
        layers.append(layer)
        if nonlinear:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


@torch.no_grad()
def mlp_cone(inputs: torch.Tensor, width: int, depth: int, nonlinear: bool = True, seed: int = 0) -> float:
    """Cone (mean pairwise cosine) of a random MLP's outputs on the given inputs."""
    return gap.cone(random_mlp(inputs.shape[1], width, depth, nonlinear, seed)(inputs.float()))


def cone_directions(embeddings: list[torch.Tensor]) -> torch.Tensor:
    """Cosine similarity between the mean directions of several embedding sets (k, k): distinct cones have
    off-diagonal entries near 0 while each set's own cone is narrow."""
    means = torch.stack([F.normalize(gap.normalize(e).mean(0), dim=0) for e in embeddings])
    return means @ means.T
