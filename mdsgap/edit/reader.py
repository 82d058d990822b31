"""A reader of world images: a small CNN that says which shape, colour, size and position an image shows.

Generated images have no labels; the reader, trained on real world images against their true factors,
gives them some, so edits of a decoder's conditioning embedding can be scored against ground truth.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from mdsgap import cache, world
from mdsgap.edit.decoder import to_pixels
from mdsgap.config import check_fields


READ = ("shape", "colour", "size", "position")
"""Factors the reader reads: what a small image still shows after downsampling."""


@dataclass(frozen=True)
class ReaderConfig:
    """A small CNN that reads world factors from images at the decoder's resolution (its cache key)."""

    resolution: int = 16
    factors: tuple[str, ...] = READ
    n_images: int = 12_000
    steps: int = 600
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "factors", tuple(self.factors))
        check_fields(self)
        unknown = [f for f in self.factors if f not in world.VISIBLE]
        if unknown:
            raise ValueError(f"The reader reads factors every image shows; {unknown} are not among "
                             f"{list(world.VISIBLE)}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class FactorReader(nn.Module):
    """Three convolutions and one linear head per factor."""

    def __init__(self, cfg: ReaderConfig):
        super().__init__()
        self.cfg = cfg
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        n = 64 * math.ceil(cfg.resolution / 4) ** 2
        self.heads = nn.ModuleDict({f: nn.Linear(n, len(world.FACTOR_BY_NAME[f].values)) for f in cfg.factors})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(x)
        return {f: head(h) for f, head in self.heads.items()}


def train_reader(cfg: ReaderConfig, progress: bool = True) -> FactorReader:
    """Train the reader on world images (split 'reader') against their true factors."""
    torch.manual_seed(cfg.seed)
    pairs = world.generate(world.WorldConfig(), cfg.n_images, seed=cfg.seed, split="reader")
    x = to_pixels(pairs.images, cfg.resolution)
    y = {f: torch.tensor(pairs.factors[f].cat.codes.to_numpy(), dtype=torch.long) for f in cfg.factors}
    model = FactorReader(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    for _ in tqdm(range(cfg.steps), desc="training the reader", disable=not progress, mininterval=2):
        idx = torch.randint(0, len(x), (cfg.batch_size,), generator=g)
        out = model(x[idx])
        loss = sum(F.cross_entropy(out[f], y[f][idx]) for f in cfg.factors)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def cached_reader(cfg: ReaderConfig, progress: bool = True) -> FactorReader:
    """The reader for cfg, from the cache or trained and cached."""
    def build(folder: Path):
        torch.save(train_reader(cfg, progress).state_dict(), folder / "weights.pt")

    folder = cache.cached("readers", {"cfg": cfg.to_dict()}, build)
    model = FactorReader(cfg)
    model.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    return model.eval()


@torch.no_grad()
def read(reader: FactorReader, images: np.ndarray) -> pd.DataFrame:
    """What the reader sees in uint8 images (any size; resized to its resolution): one column per factor."""
    x = to_pixels(images, reader.cfg.resolution)
    out = {f: [] for f in reader.cfg.factors}
    for i in range(0, len(x), 1024):
        for f, logits in reader(x[i:i + 1024]).items():
            out[f].append(logits.argmax(1))
    return pd.DataFrame({f: np.asarray(world.FACTOR_BY_NAME[f].values, dtype=object)[torch.cat(v).numpy()]
                         for f, v in out.items()})


def accuracy(got: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """Share of images whose read value matches the true one, per factor the reader reads."""
    return pd.Series({f: float((got[f].astype(str).to_numpy() == truth[f].astype(str).to_numpy()).mean())
                      for f in got.columns})


def accuracy_ci(got: pd.DataFrame, truth: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """`accuracy` with a 95% t-interval over images (`stats.seed_interval`), one row per factor in the book's
    layout (value, low, high)."""
    from mdsgap import stats

    rows = {}
    for f in got.columns:
        hits = (got[f].astype(str).to_numpy() == truth[f].astype(str).to_numpy()).astype(float)
        rows[f] = dict(zip(stats.COLUMNS, stats.seed_interval([hits])))
    return pd.DataFrame(rows).T


def changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.Series:
    """Share of images whose read value differs between two generations from paired conditions, per factor:
    how much an edit of the conditioning embedding moved each factor of the drawn image."""
    if len(before) != len(after):
        raise ValueError(f"before and after must read the same images: {len(before)} vs {len(after)} rows.")
    return pd.Series({f: float((before[f].to_numpy() != after[f].to_numpy()).mean()) for f in before.columns})
