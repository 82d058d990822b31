"""Synthetic paired embeddings with a modality gap and known concepts, for tests and benchmarks of SAEs."""
from __future__ import annotations

import torch


def gapped_pairs(n: int = 1000, d: int = 32, n_concepts: int = 24, m: int = 4, gap: float = 1.0, spec: float = 0.7,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Image-caption pairs with a modality gap: each pair shows m of n_concepts concepts; concept i is
    a_i + u_i in images and a_i + v_i in captions (a shared direction plus a modality-specific part), and a
    constant offset +-gap/2 separates the modalities, before unit normalisation. A plain TopK SAE splits most
    concepts into an image-side and a caption-side latent."""
    g = torch.Generator().manual_seed(seed)
    unit = lambda *shape: torch.nn.functional.normalize(torch.randn(*shape, generator=g), dim=-1)
    atoms, u, v, offset = unit(n_concepts, d), spec * unit(n_concepts, d), spec * unit(n_concepts, d), gap * unit(d)
    codes = torch.zeros(n, n_concepts)
    idx = torch.rand(n, n_concepts, generator=g).argsort(1)[:, :m]
    codes.scatter_(1, idx, torch.rand(n, m, generator=g) + 0.5)
    x = codes @ (atoms + u) + offset / 2 + 0.02 * torch.randn(n, d, generator=g)
    y = codes @ (atoms + v) - offset / 2 + 0.02 * torch.randn(n, d, generator=g)
    return torch.nn.functional.normalize(x, dim=1), torch.nn.functional.normalize(y, dim=1)
