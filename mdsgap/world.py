"""The synthetic image-caption world: procedurally drawn pairs with known ground-truth factors.

Every pair is an image of one coloured shape on a textured background and a caption that names
some of what the image shows. Each factor is declared once, in `FACTORS`, with its modality:

- shared factors are visible in the image and named in the caption (each with a mention probability,
  so how much of the image the caption carries can be dialled);
- vision-only factors are visible but never named;
- language-only factors are in the caption but not in the image.

`generate` returns the images, the captions and a table of every sample's true factor values, so
later chapters can check what a feature encodes against ground truth.
"""
from __future__ import annotations

import dataclasses
import re
import zlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from mdsgap.params import check_fields

Modality = Literal["shared", "vision", "language"]


@dataclass(frozen=True)
class Factor:
    """One generative factor of the world and the modality it lives in."""

    name: str
    values: tuple[str, ...]
    modality: Modality
    doc: str


FACTORS: tuple[Factor, ...] = (
    Factor("shape", ("circle", "square", "triangle", "cross"), "shared", "the object's shape; the caption's noun"),
    Factor("colour", ("red", "green", "blue", "yellow", "purple", "orange"), "shared", "the object's fill colour"),
    Factor("size", ("small", "large"), "shared", "the object's radius"),
    Factor("position", ("top left", "top right", "bottom left", "bottom right"), "shared", "the quadrant the object sits in"),
    Factor("texture", ("plain", "stripes", "checks", "dots"), "vision", "the background pattern; never named"),
    Factor("outline", ("dark", "light"), "vision", "the colour of the object's rim; never named"),
    Factor("tone", ("none", "lovely", "boring", "strange"), "language", "an evaluative word in the caption; not in the image"),
    Factor("template", ("a {}", "a picture of a {}", "there is a {} here", "my drawing of a {}"), "language",
           "the caption's sentence frame; not in the image"),
)
FACTOR_BY_NAME = {f.name: f for f in FACTORS}
SHARED = tuple(f.name for f in FACTORS if f.modality == "shared")
VISION_ONLY = tuple(f.name for f in FACTORS if f.modality == "vision")
LANGUAGE_ONLY = tuple(f.name for f in FACTORS if f.modality == "language")

# Mention probabilities of the default world: the shape is always named, the rest only sometimes, so
# captions carry less than the image does (the information imbalance of Schrodi et al., 2025).
DEFAULT_MENTION = {"shape": 1.0, "colour": 0.5, "size": 0.5, "position": 0.5}

RGB = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (50, 80, 225),
    "yellow": (235, 215, 40), "purple": (150, 60, 195), "orange": (245, 140, 25),
}


@dataclass(frozen=True)
class Correlation:
    """With probability `prob`, a sample whose `if_factor` is `if_value` gets `then_factor` = `then_value`."""

    if_factor: str
    if_value: str
    then_factor: str
    then_value: str
    prob: float

    def __post_init__(self):
        for f, v in ((self.if_factor, self.if_value), (self.then_factor, self.then_value)):
            if f not in FACTOR_BY_NAME:
                raise ValueError(f"Correlation names unknown factor {f!r}. Available: {list(FACTOR_BY_NAME)}")
            if v not in FACTOR_BY_NAME[f].values:
                raise ValueError(f"Correlation names unknown value {v!r} of {f!r}. Available: {list(FACTOR_BY_NAME[f].values)}")
        if self.if_factor == self.then_factor:
            raise ValueError("A correlation must link two different factors.")
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"Correlation prob must be in [0, 1], got {self.prob}.")


@dataclass(frozen=True)
class WorldConfig:
    """Everything that decides what the world generates (the seed is passed to `generate`)."""

    resolution: int = 32
    """Image side in pixels; shapes and textures scale with it."""
    mention: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MENTION))
    """Probability that the caption names each shared factor; missing shared factors are never named
    (an unnamed shape reads "shape")."""
    correlations: tuple[Correlation, ...] = ()
    """Optional dependencies between factors, applied in order after independent sampling."""
    noise: float = 4.0
    """Standard deviation of per-pixel Gaussian noise, in 0-255 units."""
    texture_contrast: float = 0.5
    """How strongly background textures stand out (0 hides them; 1 is +-40 grey levels)."""

    def __post_init__(self):
        check_fields(self)
        if self.resolution < 16:
            raise ValueError(f"resolution must be at least 16 pixels, got {self.resolution}.")
        for name, p in self.mention.items():
            if name not in SHARED:
                raise ValueError(f"mention names {name!r}, which is not a shared factor. Shared factors: {list(SHARED)}")
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"mention probability of {name!r} must be in [0, 1], got {p}.")
        object.__setattr__(self, "correlations", tuple(
            c if isinstance(c, Correlation) else Correlation(**c) for c in self.correlations))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def mention_world(p: float, **kwargs) -> WorldConfig:
    """The default world with colour, size and position named with probability p (the shape always)."""
    return WorldConfig(mention={"shape": 1.0, "colour": p, "size": p, "position": p}, **kwargs)


@dataclass
class Pairs:
    """Images, captions and each sample's true factor values (one row per pair)."""

    images: np.ndarray  # (n, R, R, 3) uint8
    captions: list[str]
    factors: pd.DataFrame  # one column per factor, plus mentioned_<f> for shared factors

    def __len__(self) -> int:
        return len(self.captions)

    def subset(self, idx) -> "Pairs":
        idx = np.asarray(idx)
        return Pairs(self.images[idx], [self.captions[i] for i in idx], self.factors.iloc[idx].reset_index(drop=True))


def _split_seed(seed: int, split: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), zlib.crc32(split.encode())])


def sample_factors(cfg: WorldConfig, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw factor value indices for n samples: uniform and independent, then the correlations."""
    codes = {f.name: rng.integers(0, len(f.values), n) for f in FACTORS}
    for c in cfg.correlations:
        src = FACTOR_BY_NAME[c.if_factor].values.index(c.if_value)
        dst = FACTOR_BY_NAME[c.then_factor].values.index(c.then_value)
        hit = (codes[c.if_factor] == src) & (rng.random(n) < c.prob)
        codes[c.then_factor] = np.where(hit, dst, codes[c.then_factor])
    return codes


def caption(values: dict[str, str], mentioned: dict[str, bool]) -> str:
    """Compose one caption from factor values; unmentioned shared factors are left out.

    An unmentioned shape becomes the generic noun "shape", so every caption stays a noun phrase.
    """
    words = []
    if values["tone"] != "none":
        words.append(values["tone"])
    for name in ("size", "colour"):
        if mentioned.get(name):
            words.append(values[name])
    words.append(values["shape"] if mentioned.get("shape") else "shape")
    if mentioned.get("position"):
        words += ["in the", values["position"]]
    return re.sub(r"\ba (?=[aeiou])", "an ", values["template"].format(" ".join(words)))


def _shape_sdf(shape: np.ndarray, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance (pixels, negative inside) to each sample's shape; arrays are (n, R, R)."""
    out = np.empty(dx.shape, dtype=np.float32)
    for k in range(4):  # order follows FACTORS["shape"].values
        i = np.flatnonzero(shape == k)
        if len(i) == 0:
            continue
        x, y, rk = dx[i], dy[i], r[i]
        ax, ay = np.abs(x), np.abs(y)
        if k == 0:  # circle
            out[i] = np.sqrt(x * x + y * y) - rk
        elif k == 1:  # square
            out[i] = np.maximum(ax, ay) - 0.8 * rk
        elif k == 2:  # upward triangle: apex at -r, base at +0.7r, half-width 0.9r
            out[i] = np.maximum(y - 0.7 * rk, (1.7 * ax - 0.9 * (y + rk)) / 1.9235)
        else:  # cross: the union of two bars
            arm = 0.32 * rk
            out[i] = np.minimum(np.maximum(ax - arm, ay - rk), np.maximum(ax - rk, ay - arm))
    return out


def _background(texture: np.ndarray, R: int, contrast: float, rng: np.random.Generator) -> np.ndarray:
    """Grey background patterns around a mid grey, (n, R, R) in 0-255; contrast 1 spans +-40 levels."""
    yy, xx = np.mgrid[0:R, 0:R]
    period = max(4, R // 8)
    a = 40.0 * contrast
    stripes = np.where(((xx + yy) // (period // 2)) % 2 == 0, 135 + a, 135 - a)
    checks = np.where(((xx // period) + (yy // period)) % 2 == 0, 135 + a, 135 - a)
    dot = ((xx % period) - period / 2) ** 2 + ((yy % period) - period / 2) ** 2 <= (period / 4) ** 2 + 0.5
    dots = np.where(dot, 135 - 1.5 * a, 135 + 0.3 * a)
    plain = np.full((R, R), 135.0)
    bank = np.stack([plain, stripes, checks, dots]).astype(np.float32)  # order follows FACTORS["texture"].values
    shift = rng.integers(0, period, size=(len(texture), 2))
    bg = bank[texture]
    # Random phase so a texture is a pattern, not a fixed pixel template.
    rows = (np.arange(R)[None, :] + shift[:, :1]) % R
    cols = (np.arange(R)[None, :] + shift[:, 1:]) % R
    return bg[np.arange(len(texture))[:, None, None], rows[:, :, None], cols[:, None, :]]


def render(codes: dict[str, np.ndarray], R: int, noise: float, contrast: float, rng: np.random.Generator) -> np.ndarray:
    """Draw images for factor codes: (n, R, R, 3) uint8, vectorised over the batch."""
    n = len(codes["shape"])
    s = R / 32.0
    radius = np.where(codes["size"] == 0, 6.0, 10.0) * s * rng.uniform(0.92, 1.08, n)
    quad = codes["position"]
    cx = np.where(quad % 2 == 0, 10.0, 22.0) * s + rng.uniform(-1.5, 1.5, n) * s
    cy = np.where(quad < 2, 10.0, 22.0) * s + rng.uniform(-1.5, 1.5, n) * s
    yy, xx = np.mgrid[0:R, 0:R].astype(np.float32) + 0.5
    dx = xx[None] - cx[:, None, None].astype(np.float32)
    dy = yy[None] - cy[:, None, None].astype(np.float32)
    sdf = _shape_sdf(codes["shape"], dx, dy, radius[:, None, None].astype(np.float32))
    colour_names = FACTOR_BY_NAME["colour"].values
    rgb = np.array([RGB[c] for c in colour_names], dtype=np.float32)[codes["colour"]]
    rgb += rng.uniform(-12, 12, (n, 3)).astype(np.float32)
    bg = _background(codes["texture"], R, contrast, rng).astype(np.float32)
    rim = sdf > -0.22 * radius[:, None, None]
    rim_level = np.where(codes["outline"] == 0, 20.0, 245.0).astype(np.float32)[:, None, None, None]
    fill = np.where(rim[..., None], rim_level, rgb[:, None, None, :])
    img = np.where((sdf <= 0)[..., None], fill, bg[..., None])
    if noise > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise)
    return np.clip(img, 0, 255).astype(np.uint8)


def generate(cfg: WorldConfig, n: int, seed: int = 0, split: str = "train", chunk: int = 4096) -> Pairs:
    """Generate n pairs deterministically from (seed, split); different splits never share a stream."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    rng = np.random.default_rng(_split_seed(seed, split))
    codes = sample_factors(cfg, n, rng)
    mentioned = {name: rng.random(n) < cfg.mention.get(name, 0.0) for name in SHARED}
    images = np.concatenate([
        render({k: v[i:i + chunk] for k, v in codes.items()}, cfg.resolution, cfg.noise, cfg.texture_contrast, rng)
        for i in range(0, n, chunk)])
    table = pd.DataFrame({f.name: pd.Categorical.from_codes(codes[f.name], categories=list(f.values)) for f in FACTORS})
    for name in SHARED:
        table[f"mentioned_{name}"] = mentioned[name]
    names = {f.name: np.asarray(f.values, dtype=object)[codes[f.name]] for f in FACTORS}
    captions = [caption({k: names[k][i] for k in names}, {k: mentioned[k][i] for k in SHARED}) for i in range(n)]
    table["caption"] = captions
    return Pairs(images, captions, table)


def factor_table() -> pd.DataFrame:
    """The declared factors as a table, for the book."""
    return pd.DataFrame([{"factor": f.name, "modality": f.modality, "values": ", ".join(f.values), "what": f.doc}
                         for f in FACTORS])
