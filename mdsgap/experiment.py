"""The setup every chapter starts from: the subject CLIP and its held-out pairs, chosen by parameters.

By default the subject is the small CLIP trained on the synthetic world and the pairs are fresh
world pairs. Setting `clip_model`/`clip_pretrained` swaps in any open_clip model, and
`dataset_csv` swaps in a real dataset, with no other change to a notebook.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from mdsgap import world
from mdsgap.clip import datasets, embeddings, models, training
from mdsgap.config import check_fields, from_namespace

SMALL_MODELS = ("mdsgap-small", "mdsgap-tiny")


@dataclass(frozen=True)
class ExperimentConfig:
    """Notebook parameters shared by every chapter (each notebook's parameters cell sets them)."""

    seed: int = 0
    """Seed of the world, of training, and of the random baselines."""
    n_train: int = 20_000
    """World pairs the small CLIP trains on."""
    train_steps: int = 2000
    batch_size: int = 256
    train_lr: float = 2e-3
    """Peak learning rate of the one-cycle schedule. Fewer, larger steps: the gap closes with every step
    (2000 steps at 1e-3 missed the shape's zero-shot bar, 3200 closed the gap below chapter 1's range)."""
    temperature: float = 0.01
    """Fixed softmax temperature of training (ignored when learn_temperature)."""
    learn_temperature: bool = False
    """Learn the temperature from open_clip's 0.07 start instead of fixing it."""
    n_test: int = 2_000
    """Held-out pairs every measurement uses (rows of the CSV, when one is given)."""
    clip_model: str = "mdsgap-small"
    """open_clip architecture name, or 'local-dir:PATH'."""
    clip_pretrained: str = ""
    """Pretrained tag or checkpoint file; '' trains a small model on the world, or random-inits others."""
    dataset_csv: str = ""
    """'' for the synthetic world, else a CSV of image paths and captions (columns filepath, title)."""
    skip_bad_rows: bool = False
    """Leave out unreadable CSV rows (and count them) instead of stopping at the first."""
    csv_sep: str = ""
    """The CSV's column separator; '' detects it (tab for open_clip's TSV files)."""
    label_column: str = ""
    """A column of the CSV with one label per row: the labels chapter 8's attacks flip and chapter 10's
    probe screen reads."""
    device: str = "auto"
    """'auto' (a GPU when one is visible), 'cpu', 'cuda', ..."""
    n_feature_pairs: int = 10_000
    """Pairs whose embeddings train the feature extractors and are scored (the feature chapters)."""

    def __post_init__(self):
        check_fields(self)
        if self.n_test < 10:
            raise ValueError(f"n_test must be at least 10, got {self.n_test}.")

    @classmethod
    def from_params(cls, namespace: dict) -> "ExperimentConfig":
        """Pick this class's fields out of a notebook's globals()."""
        return from_namespace(cls, namespace)

    @property
    def on_world(self) -> bool:
        return self.dataset_csv == ""

    @property
    def trains_small_clip(self) -> bool:
        return self.clip_pretrained == "" and self.clip_model in SMALL_MODELS

    def train_config(self) -> training.TrainConfig:
        return training.TrainConfig(
            model=self.clip_model, n_pairs=self.n_train, steps=self.train_steps, batch_size=self.batch_size,
            lr=self.train_lr, temperature=None if self.learn_temperature else self.temperature, seed=self.seed)


class NeedsWorld(ValueError):
    """A chapter asked to run on a CSV dataset that only the generated world can feed (`needs_world`)."""


def needs_world(s: ExperimentConfig, what: str) -> None:
    """Stop a chapter before any work when it is given a CSV but needs the world: one line that says what
    it needs and which parameter gives it (the CLIP parameters still apply on the world)."""
    if not s.on_world:
        raise NeedsWorld(f"This chapter needs {what}, which a CSV dataset does not have: set dataset_csv = '' "
                         "to run it on the generated world (clip_model and clip_pretrained still choose the "
                         "CLIP).")


@dataclass
class Subject:
    """The model a chapter studies and, when it was trained here, its training record."""

    clip: models.Clip
    label: str
    trained: training.Trained | None = None


def subject(s: ExperimentConfig, progress: bool = True) -> Subject:
    """The chapter's CLIP: the small model trained on the world (cached), or the named open_clip model."""
    if s.trains_small_clip:
        t = training.cached_clip(s.train_config(), progress=progress, device=s.device)
        return Subject(t.clip, f"{s.clip_model} (trained)", t)
    label = f"{s.clip_model} ({s.clip_pretrained or 'random init'})"
    return Subject(models.create_clip(s.clip_model, s.clip_pretrained, seed=s.seed, device=s.device), label)


@dataclass
class TestData:
    """Held-out pairs and a model's embeddings of them; `factors` is None for a CSV dataset."""

    pairs: object
    x: torch.Tensor
    y: torch.Tensor
    factors: object = None


def load_pairs(s: ExperimentConfig, n: int | None = None):
    """Held-out pairs (split 'test' of the world, or the CSV's first n usable rows) and their cache source."""
    n = n or s.n_test
    if s.on_world:
        return embeddings.world_pairs(world.WorldConfig(), n, s.seed, "test")
    pairs = datasets.load_csv(s.dataset_csv, sep=s.csv_sep, skip_bad=s.skip_bad_rows, limit=n)
    return pairs, None


def test_data(s: ExperimentConfig, clip: models.Clip, n: int | None = None, progress: bool = True) -> TestData:
    pairs, source = load_pairs(s, n)
    x, y = embeddings.embed_pairs(clip, pairs, source, progress=progress)
    return TestData(pairs, x, y, pairs.factors if s.on_world else None)


def labelled_rows(s: ExperimentConfig, n: int, learned=()):
    """Up to n rows of the CSV with their `s.label_column` label (in `columns`), rows whose image is not in
    `learned` (the paths an autoencoder learnt from) first: (rows, held_out), held_out False when the CSV has
    no row beyond them and the first n rows are returned instead."""
    rows = datasets.load_csv(s.dataset_csv, sep=s.csv_sep, skip_bad=s.skip_bad_rows,
                             limit=s.n_feature_pairs + n, keep=(s.label_column,),
                             hint="set label_column to the CSV's label column")
    seen = set(learned)
    held = [i for i, path in enumerate(rows.paths) if path not in seen][:n]
    return rows.subset(held or range(min(n, len(rows)))), bool(held)


def feature_pairs(s: ExperimentConfig, clip: models.Clip, n: int, progress: bool = True):
    """The pairs the feature chapters share: (pairs, x, y, data identity), split 'features' of the world or
    the CSV's first n rows, embedded by `clip` (cached)."""
    if s.on_world:
        pairs, source = embeddings.world_pairs(world.WorldConfig(), n, s.seed, "features")
    else:
        pairs, source = load_pairs(s, n)
    x, y = embeddings.embed_pairs(clip, pairs, source, progress=progress)
    return pairs, x, y, embeddings.data_identity(pairs, source)
