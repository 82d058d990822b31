"""Robustness of nearest-neighbour decisions to perturbed embeddings (Chowers et al., 2026).

Rob = P[NN(q, D) == NN(q, perturb(D))]: the share of queries whose nearest database item (by cosine
similarity) is unchanged when the database embeddings are perturbed. Perturbations are Gaussian noise of a
given variance per coordinate and uniform quantisation to a number of bins; caption paraphrase is a change of
the text itself, measured as the agreement between the zero-shot predictions of two prompt templates.

Zero-shot classification is the chapters' task (as in Chowers et al.'s CIFAR experiments): the images query
each factor's class prompts, so the prompts are the database that is perturbed (`zero_shot_agreement`).
"""
from __future__ import annotations

import itertools
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mdsgap.clip import evaluation


def nearest(query: torch.Tensor, database: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Index of the most cosine-similar database row for every query row."""
    d = F.normalize(database.double(), dim=-1)
    return torch.cat([(F.normalize(q.double(), dim=-1) @ d.T).argmax(1) for q in query.split(batch_size)])


def gaussian(variance: float, seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """Perturbation: add N(0, variance) noise to every coordinate."""
    if variance < 0:
        raise ValueError(f"variance must be >= 0, got {variance}.")

    def perturb(e):
        g = torch.Generator().manual_seed(seed)
        return e + variance ** 0.5 * torch.randn(e.shape, generator=g, dtype=torch.float64).to(e.dtype)
    return perturb


def quantize(bins: int, low: float = -1.0, high: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """Perturbation: round every coordinate to the centre of one of `bins` equal bins on [low, high]."""
    if bins < 2:
        raise ValueError(f"quantisation needs at least 2 bins, got {bins}.")
    width = (high - low) / bins

    def perturb(e):
        idx = ((e - low) / width).floor().clamp(0, bins - 1)
        return low + (idx + 0.5) * width
    return perturb


def robustness(query: torch.Tensor, database: torch.Tensor, perturb: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Share of queries whose nearest database row is the same before and after `perturb(database)`."""
    return float((nearest(query, database) == nearest(query, perturb(database))).double().mean())


def _predictions(x: torch.Tensor, classes: dict) -> dict:
    return {c: evaluation.zero_shot_predict(x, e) for c, e in classes.items()}


def _agreement(a: dict, b: dict) -> float:
    return float(np.mean([(a[c] == b[c]).mean() for c in a]))


def _kept(x: torch.Tensor, classes: dict, clean: dict, perturb: Callable) -> float:
    """Agreement of the clean predictions with those after perturbing every class embedding."""
    return _agreement(clean, _predictions(x, {c: perturb(e) for c, e in classes.items()}))


def zero_shot_agreement(x: torch.Tensor, classes: dict, perturb: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Robustness of zero-shot classification: the share of images x whose predicted value is unchanged when
    every class embedding ({factor: (values, d)}) is perturbed, averaged over the factors."""
    return _kept(x, classes, _predictions(x, classes), perturb)


def perturbation_table(x: torch.Tensor, classes: dict, variances, bins, n_noise: int) -> dict:
    """`zero_shot_agreement` per perturbation, as one row: "noise {v}" (Gaussian noise of variance v, the mean
    over `n_noise` draws, seeds 0, 1, ...) and "{b} bins" (quantisation)."""
    clean = _predictions(x, classes)
    row = {f"noise {v}": np.mean([_kept(x, classes, clean, gaussian(v, seed=n)) for n in range(n_noise)])
           for v in variances}
    return {**row, **{f"{b} bins": _kept(x, classes, clean, quantize(b)) for b in bins}}


def paraphrase_agreement(x: torch.Tensor, templates: dict, move: torch.Tensor | float = 0.0) -> float:
    """Robustness to a caption paraphrase: the agreement of the zero-shot predictions made with the class
    prompts of two templates ({template: {factor: (values, d)}}, each prompt moved by `move`), averaged over
    every pair of templates."""
    para = []
    for t1, t2 in itertools.combinations(templates, 2):
        p1 = _predictions(x, {c: v + move for c, v in templates[t1].items()})
        p2 = _predictions(x, {c: v + move for c, v in templates[t2].items()})
        para.append(_agreement(p1, p2))
    return float(np.mean(para))
