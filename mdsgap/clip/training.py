"""Training a small CLIP on the synthetic world with open_clip's contrastive loss.

The recipe matters for the gap: with a learnable temperature and captions that name everything, a
small CLIP closes most of its gap; a fixed low temperature and captions that carry less than the
image keep it open, as real CLIP's is (Liang et al., 2022; Schrodi et al., 2025). The book's
chapter "Measuring the modality gap" shows this.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import numpy as np
import open_clip
import pandas as pd
import torch
from open_clip.loss import ClipLoss
from tqdm.auto import tqdm

from mdsgap import cache, gap, world
from mdsgap.clip import models
from mdsgap.config import check_fields


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a trained small CLIP; its cache key (`model_key`). The book's subject recipe is
    `experiment.ExperimentConfig.train_config`; these defaults serve tests and the sweeps' fine-tunes."""

    model: str = "mdsgap-small"
    """A registered architecture name (see mdsgap/clip/model_configs)."""
    world: world.WorldConfig = field(default_factory=world.WorldConfig)
    """The world the training pairs come from."""
    n_pairs: int = 20_000
    """Training pairs generated (split 'train'); batches are drawn from them with replacement."""
    steps: int = 3200
    batch_size: int = 256
    lr: float = 1e-3
    """Peak learning rate of the one-cycle schedule (linear warm-up, cosine decay)."""
    warmup: float = 0.1
    """Fraction of steps spent warming up."""
    weight_decay: float = 0.1
    temperature: float | None = 0.01
    """Fixed softmax temperature (logit scale 1/T); None learns it from open_clip's 0.07 start."""
    freeze_token_embedding: bool = True
    """Keep the 49,408-word token table at its random start: the world uses ~40 words, and updating
    the whole table would cost more than the rest of a training step."""
    seed: int = 0
    init: dict | None = None
    """The TrainConfig (as a dict) of a trained model to start from, as fine-tuning does; None starts from
    a seeded random initialisation."""
    eval_every: int = 50
    """Steps between held-out measurements of loss and gap for the training curve."""

    def __post_init__(self):
        if isinstance(self.world, dict):
            object.__setattr__(self, "world", world.WorldConfig(**self.world))
        check_fields(self)
        if self.temperature is not None and not 0 < self.temperature <= 1:
            raise ValueError(f"temperature must be in (0, 1] or None (learnable), got {self.temperature}.")
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError("steps must be >= 1 and batch_size >= 2.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SweepConfig:
    """The cheap recipe of the sweeps (Liang et al.'s protocol): a base CLIP trained from scratch per seed,
    then fine-tuned at a fixed (or learned, None) temperature, optionally on a world with another mention
    probability. Chapters that share a recipe share its cached models."""

    model: str = "mdsgap-tiny"
    n_pairs: int = 10_000
    base_steps: int = 300
    base_temperature: float = 0.1
    finetune_steps: int = 100
    batch_size: int = 128

    PARAMS: ClassVar[dict[str, str]] = {
        "sweep_model": "model", "sweep_pairs": "n_pairs", "sweep_steps": "base_steps",
        "base_temperature": "base_temperature", "finetune_steps": "finetune_steps", "sweep_batch": "batch_size"}
    """Notebook parameter name -> field (the chapters that train sweep CLIPs share these parameters)."""

    @classmethod
    def from_params(cls, namespace: dict) -> "SweepConfig":
        """The recipe from a notebook's globals(): the `PARAMS` it defines, defaults for the rest."""
        return cls(**{field: namespace[name] for name, field in cls.PARAMS.items() if name in namespace})

    def base(self, seed: int) -> TrainConfig:
        return TrainConfig(model=self.model, n_pairs=self.n_pairs, steps=self.base_steps, batch_size=self.batch_size,
                           temperature=self.base_temperature, seed=seed)

    def finetune(self, seed: int, temperature: float | None, mention: float | None = None) -> TrainConfig:
        base = self.base(seed)
        w = world.WorldConfig() if mention is None else world.mention_world(mention)
        return dataclasses.replace(base, steps=self.finetune_steps, temperature=temperature, world=w,
                                   init=base.to_dict())


@dataclass
class Trained:
    """A trained small CLIP, where its checkpoint lies, and its training curve."""

    clip: models.Clip
    config: TrainConfig
    folder: Path
    history: pd.DataFrame


def _one_cycle(step: int, total: int, warmup: float) -> float:
    w = max(1, int(warmup * total))
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, total - w)))


class _Tokens:
    """Tokenise each distinct caption once; captions repeat a lot in the world."""

    def __init__(self, tokenizer, captions: list[str]):
        uniq, self.index = np.unique(np.asarray(captions, dtype=object), return_inverse=True)
        self.table = tokenizer(list(uniq))

    def __getitem__(self, idx) -> torch.Tensor:
        return self.table[torch.as_tensor(self.index[idx])]


_PAIRS: dict = {}


def _training_pairs(cfg: world.WorldConfig, n: int, seed: int, split: str):
    """`world.generate`, remembered for the last few worlds: a sweep fine-tunes many models on one world
    (the pairs are only read)."""
    import json

    key = (json.dumps(cfg.to_dict(), sort_keys=True, default=str), n, seed, split)
    if key not in _PAIRS:
        while len(_PAIRS) >= 4:
            _PAIRS.pop(next(iter(_PAIRS)))
        _PAIRS[key] = world.generate(cfg, n, seed=seed, split=split)
    return _PAIRS[key]


def _evaluate(clip: models.Clip, loss_fn, images: torch.Tensor, tokens: torch.Tensor) -> dict:
    model = clip.model
    model.eval()
    with torch.no_grad():
        x = model.encode_image(images, normalize=True)
        y = model.encode_text(tokens, normalize=True)
        loss = float(loss_fn(x, y, model.logit_scale.exp()))
        x, y = x.cpu(), y.cpu()
    model.train()
    return {"val_loss": loss, "L2M": gap.l2m(x, y), "cone_image": gap.cone(x), "cone_text": gap.cone(y),
            "temperature": float(1 / model.logit_scale.exp())}


def train_clip(cfg: TrainConfig, progress: bool = True, device: str = "auto") -> tuple[models.Clip, pd.DataFrame]:
    """Train a small CLIP from a seeded random start; returns it and its training curve."""
    torch.manual_seed(cfg.seed)
    clip = models.create_clip(cfg.model, "", seed=cfg.seed, device=device)
    dev = clip.device()
    model = clip.model
    if cfg.init is not None:
        base = TrainConfig(**cfg.init)
        if base.model != cfg.model:
            raise ValueError(f"init model {base.model!r} differs from the model being trained, {cfg.model!r}.")
        model.load_state_dict(cached_clip(base, progress=progress, device=device).clip.model.state_dict())
        if cfg.temperature is None:  # a learned temperature starts where open_clip starts it
            model.logit_scale.data.fill_(math.log(1 / 0.07))
    if cfg.temperature is not None:
        model.logit_scale.data.fill_(math.log(1 / cfg.temperature))
        model.logit_scale.requires_grad_(False)
    if cfg.freeze_token_embedding:
        model.token_embedding.weight.requires_grad_(False)
    pairs = _training_pairs(cfg.world, cfg.n_pairs, cfg.seed, "train")
    val = _training_pairs(cfg.world, 512, cfg.seed, "val")
    val_images, val_tokens = clip.image_tensor(val.images).to(dev), clip.tokenizer(val.captions).to(dev)
    tokens = _Tokens(clip.tokenizer, pairs.captions)

    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _one_cycle(s, cfg.steps, cfg.warmup))
    loss_fn = ClipLoss()
    rng = np.random.default_rng(cfg.seed)
    rows = [{"step": 0, "train_loss": float("nan"), **_evaluate(clip, loss_fn, val_images, val_tokens)}]
    model.train()
    bar = tqdm(range(1, cfg.steps + 1), desc=f"training {cfg.model}", disable=not progress, mininterval=2)
    running = []
    for step in bar:
        idx = rng.integers(0, len(pairs), cfg.batch_size)
        x = model.encode_image(clip.image_tensor(pairs.images[idx]).to(dev), normalize=True)
        y = model.encode_text(tokens[idx].to(dev), normalize=True)
        loss = loss_fn(x, y, model.logit_scale.exp())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():  # open_clip clamps the learnable scale at 100 (T >= 0.01)
            model.logit_scale.clamp_(0, math.log(100))
        running.append(loss.item())
        if step % cfg.eval_every == 0 or step == cfg.steps:
            rows.append({"step": step, "train_loss": float(np.mean(running)),
                         **_evaluate(clip, loss_fn, val_images, val_tokens)})
            running = []
            bar.set_postfix(loss=f"{rows[-1]['train_loss']:.3f}", L2M=f"{rows[-1]['L2M']:.2f}")
    model.eval()
    return clip, pd.DataFrame(rows)


def model_key(cfg: TrainConfig) -> dict:
    """The cache key of a trained small CLIP: its recipe, its architecture's config (a registered name whose
    JSON changes, a longer text context say, is another model) and the library versions that train it."""
    return {"train": cfg.to_dict(), "architecture": models.get_model_config(cfg.model),
            "open_clip": open_clip.__version__, "torch": torch.__version__.split("+")[0]}


def cached_clip(cfg: TrainConfig, progress: bool = True, device: str = "auto") -> Trained:
    """The small CLIP for cfg: loaded from the cache, or trained and cached on a miss.

    The device is not part of the key (`model_key`): a model trained on a GPU serves a CPU run as well.
    """
    key = model_key(cfg)

    def build(folder: Path):
        clip, history = train_clip(cfg, progress=progress, device=device)
        models.save_checkpoint(clip.model, models.get_model_config(cfg.model), folder / "checkpoint",
                               extra={"mdsgap_train_config": cfg.to_dict()})
        history.to_csv(folder / "history.csv", index=False)

    folder = cache.cached("models", key, build)
    clip = models.create_clip(f"local-dir:{folder / 'checkpoint'}", device=device)
    return Trained(clip, cfg, folder, pd.read_csv(folder / "history.csv"))
