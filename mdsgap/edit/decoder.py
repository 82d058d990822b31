"""A small diffusion decoder from CLIP image embeddings to world images, and a reader of what it draws.

Stable unCLIP conditions a diffusion model on a CLIP image embedding by adding it to the timestep
embedding; this is the same on the world's scale: a diffusers `UNet2DModel` with `class_embed_type=
"identity"` takes an MLP projection of the embedding in place of a class embedding, trained to predict the
clean image (cheaper to learn than the noise at this size), with the condition dropped now and then so
sampling can use classifier-free guidance. `mdsgap.edit.reader` says what a generated image shows.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from mdsgap import cache, world
from mdsgap.config import check_fields


@dataclass(frozen=True)
class DecoderConfig:
    """Everything that decides a trained decoder (with the CLIP that embeds its images): its cache key."""

    resolution: int = 16
    """Side of the generated images; world images are rendered at 32 and downsampled."""
    channels: tuple[int, ...] = (32, 64)
    layers_per_block: int = 1
    n_images: int = 12_000
    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    cond_dropout: float = 0.1
    """Probability of training a sample without its condition (for classifier-free guidance)."""
    train_timesteps: int = 1000
    prediction: str = "sample"
    """What the UNet predicts: the clean image ("sample") or the noise ("epsilon")."""
    cond_channels: int = 0
    """Also feed the condition as this many constant input channels (0: only through the timestep
    embedding, as unCLIP does); a stronger route for what the embedding says about the whole image."""
    film: bool = False
    """Condition the ResNet blocks by scale and shift (FiLM, diffusers' "scale_shift") instead of by an
    added bias: a multiplicative route that can switch spatial detectors on and off."""
    attention: bool = False
    """Self-attention in the UNet's middle block."""
    cond_maps: int = 0
    """Also feed the condition as this many learned spatial maps (a linear map from the condition to
    maps x resolution x resolution input channels): a route that can place a shape where the embedding
    says, which convolutions cannot do from a spatially constant signal."""
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(self.channels))
        check_fields(self)
        if self.resolution % (2 ** (len(self.channels) - 1)):
            raise ValueError(f"resolution {self.resolution} must be divisible by 2^(levels - 1) = "
                             f"{2 ** (len(self.channels) - 1)}.")
        if self.prediction not in ("sample", "epsilon"):
            raise ValueError(f"prediction must be 'sample' or 'epsilon', got {self.prediction!r}.")
        if not 0 <= self.cond_dropout < 1:
            raise ValueError(f"cond_dropout must be in [0, 1), got {self.cond_dropout}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class EmbeddingDecoder(nn.Module):
    """UNet2DModel whose timestep embedding gets an MLP projection of a unit CLIP embedding (or a learned
    null vector where the condition is dropped)."""

    def __init__(self, d_embed: int, cfg: DecoderConfig):
        super().__init__()
        from diffusers import UNet2DModel

        self.cfg = cfg
        width = cfg.channels[0] * 4  # UNet2DModel's timestep-embedding width
        self.unet = UNet2DModel(
            sample_size=cfg.resolution, in_channels=3 + cfg.cond_channels + cfg.cond_maps, out_channels=3,
            block_out_channels=cfg.channels,
            layers_per_block=cfg.layers_per_block, down_block_types=("DownBlock2D",) * len(cfg.channels),
            up_block_types=("UpBlock2D",) * len(cfg.channels), class_embed_type="identity",
            norm_num_groups=8, add_attention=cfg.attention,
            resnet_time_scale_shift="scale_shift" if cfg.film else "default")
        self.cond = nn.Sequential(nn.Linear(d_embed, width), nn.SiLU(), nn.Linear(width, width))
        self.null = nn.Parameter(torch.zeros(width))
        self.to_maps = nn.Linear(width, cfg.cond_channels) if cfg.cond_channels else None
        self.to_spatial = nn.Linear(width, cfg.cond_maps * cfg.resolution ** 2) if cfg.cond_maps else None

    def forward(self, noisy: torch.Tensor, t: torch.Tensor, emb: torch.Tensor | None,
                drop: torch.Tensor | None = None) -> torch.Tensor:
        c = self.null.expand(len(noisy), -1) if emb is None else self.cond(F.normalize(emb.float(), dim=-1))
        if drop is not None:
            c = torch.where(drop[:, None], self.null.expand_as(c), c)
        if self.to_maps is not None:
            maps = self.to_maps(c)[:, :, None, None].expand(-1, -1, *noisy.shape[-2:])
            noisy = torch.cat([noisy, maps], 1)
        if self.to_spatial is not None:
            r = self.cfg.resolution
            noisy = torch.cat([noisy, self.to_spatial(c).view(len(c), self.cfg.cond_maps, r, r)], 1)
        return self.unet(noisy, t, class_labels=c).sample


def scheduler(cfg: DecoderConfig, kind: str = "ddpm"):
    """The diffusers scheduler of the decoder: DDPM for training, DDIM for sampling, with the decoder's
    prediction type."""
    from diffusers import DDIMScheduler, DDPMScheduler

    cls = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}[kind]
    return cls(num_train_timesteps=cfg.train_timesteps, prediction_type=cfg.prediction, clip_sample=True)


def to_pixels(images: np.ndarray, resolution: int) -> torch.Tensor:
    """uint8 (n, H, W, 3) images to (n, 3, r, r) in [-1, 1], area-downsampled to the decoder's resolution."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return F.interpolate(x, size=(resolution, resolution), mode="area") if x.shape[-1] != resolution else x


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(n, 3, r, r) in [-1, 1] back to uint8 (n, r, r, 3)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def train_decoder(images: np.ndarray, emb: torch.Tensor, cfg: DecoderConfig, progress: bool = True):
    """Train a decoder on world images and their CLIP image embeddings; returns it and its loss curve."""
    torch.manual_seed(cfg.seed)
    model = EmbeddingDecoder(emb.shape[1], cfg)
    x0_all, e_all = to_pixels(images, cfg.resolution), emb.float()
    sched = scheduler(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    lr = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    g = torch.Generator().manual_seed(cfg.seed)
    rows, running = [], []
    for step in tqdm(range(1, cfg.steps + 1), desc="training the decoder", disable=not progress, mininterval=2):
        idx = torch.randint(0, len(x0_all), (cfg.batch_size,), generator=g)
        x0, e = x0_all[idx], e_all[idx]
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, cfg.train_timesteps, (len(x0),), generator=g)
        drop = torch.rand(len(x0), generator=g) < cfg.cond_dropout
        goal = x0 if cfg.prediction == "sample" else noise
        loss = F.mse_loss(model(sched.add_noise(x0, noise, t), t, e, drop), goal)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lr.step()
        running.append(loss.item())
        if step % 100 == 0 or step == cfg.steps:
            rows.append({"step": step, "loss": float(np.mean(running))})
            running = []
    return model.eval(), pd.DataFrame(rows)


@torch.no_grad()
def sample(model: EmbeddingDecoder, emb: torch.Tensor, steps: int = 25, guidance: float = 2.0,
           seed: int = 0, batch_size: int = 256) -> np.ndarray:
    """Generate one image per embedding: DDIM with classifier-free guidance (guided = uncond + w (cond -
    uncond)); uint8 (n, r, r, 3), deterministic for a seed."""
    sched = scheduler(model.cfg, "ddim")
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    r = model.cfg.resolution
    out = []
    for i in range(0, len(emb), batch_size):
        e = emb[i:i + batch_size].float()
        x = torch.randn((len(e), 3, r, r), generator=g)
        for t in sched.timesteps:
            tt = torch.full((len(e),), int(t))
            cond = model(x, tt, e)
            if guidance != 1:
                uncond = model(x, tt, None)
                cond = uncond + guidance * (cond - uncond)
            pred = cond
            x = sched.step(pred, t, x).prev_sample
        out.append(to_uint8(x))
    return np.concatenate(out)


def cached_decoder(clip, cfg: DecoderConfig, world_cfg: world.WorldConfig | None = None,
                    progress: bool = True) -> tuple[EmbeddingDecoder, pd.DataFrame]:
    """The decoder for (clip, cfg): loaded from the cache, or trained on `cfg.n_images` world images (split
    'decoder') embedded by `clip` and cached on a miss."""
    world_cfg = world_cfg or world.WorldConfig()
    key = {"cfg": cfg.to_dict(), "clip": clip.identity, "world": world_cfg.to_dict()}

    def build(folder: Path):
        pairs = world.generate(world_cfg, cfg.n_images, seed=cfg.seed, split="decoder")
        emb = torch.cat([clip.encode_images(pairs.images[i:i + 512]) for i in range(0, cfg.n_images, 512)])
        model, curve = train_decoder(pairs.images, emb, cfg, progress)
        torch.save(model.state_dict(), folder / "weights.pt")
        curve.to_csv(folder / "curve.csv", index=False)

    folder = cache.cached("decoders", key, build)
    d = clip.encode_images(world.generate(world_cfg, 1, seed=0, split="probe").images).shape[1]
    model = EmbeddingDecoder(d, cfg)
    model.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    return model.eval(), pd.read_csv(folder / "curve.csv")
