"""Image and text embeddings of a set of pairs, computed in batches and cached on disk.

Pairs are either the world's (`world.Pairs`, images as arrays) or a CSV dataset's
(`datasets.CsvPairs`, images as files); both go through the same `embed_pairs`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mdsgap import cache, world
from mdsgap.clip.datasets import CsvPairs
from mdsgap.clip.models import Clip


def _image_batch(clip: Clip, pairs, idx) -> torch.Tensor:
    if isinstance(pairs, world.Pairs):
        return clip.image_tensor(pairs.images[idx])
    return torch.stack([clip.preprocess(im) for im in pairs.load_images(idx)])


def encode_pairs(clip: Clip, pairs, batch_size: int = 256, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(image embeddings, text embeddings), float32 and not normalised, row i from pair i."""
    xs, ys = [], []
    starts = range(0, len(pairs), batch_size)
    for s in tqdm(starts, desc=f"embedding {len(pairs)} pairs", disable=not progress, mininterval=2):
        idx = np.arange(s, min(s + batch_size, len(pairs)))
        xs.append(clip.encode_images(_image_batch(clip, pairs, idx)))
        ys.append(clip.encode_texts([pairs.captions[i] for i in idx]))
    return torch.cat(xs), torch.cat(ys)


def data_identity(pairs, source: dict | None = None) -> dict:
    """What a set of pairs is, for the cache: the world config, seed and split that made it, or the CSV."""
    if isinstance(pairs, CsvPairs):
        return pairs.identity()
    if source is None:
        raise ValueError("World pairs need their source ({'world': ..., 'seed': ..., 'split': ..., 'n': ...}) "
                         "to be cached; pass source= or call encode_pairs instead.")
    return source


def embed_pairs(clip: Clip, pairs, source: dict | None = None, batch_size: int = 256,
                progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached `encode_pairs`: the key is the model's identity plus the data's identity."""
    key = {"model": clip.identity, "data": data_identity(pairs, source)}

    def build(folder: Path):
        x, y = encode_pairs(clip, pairs, batch_size, progress)
        torch.save({"image": x, "text": y}, folder / "embeddings.pt")

    saved = torch.load(cache.cached("embeddings", key, build) / "embeddings.pt", weights_only=True)
    return saved["image"], saved["text"]


def world_pairs(cfg: world.WorldConfig, n: int, seed: int, split: str) -> tuple[world.Pairs, dict]:
    """Generate world pairs together with the source record that keys their embeddings in the cache."""
    return world.generate(cfg, n, seed=seed, split=split), {"world": cfg.to_dict(), "n": n,
                                                             "seed": seed, "split": split}
