"""The synthetic image-caption world: procedurally drawn pairs with known ground-truth factors.

Every pair is an image of one coloured shape on a textured background and a caption. Each factor is
declared once, in `FACTORS`, with two presence probabilities: how often the image *shows* it (q) and how
often the caption *names* it (p). Together they say which modality a factor belongs to:

- cross-modal factors are always shown and always named (q = p = 1): shape, colour, the colour's shade
  and the tint of the light (a warm or cool cast over the whole image);
- vision-dominant factors are always shown and named now and then (q = 1, p small): size, position, the
  background's texture and brightness, as real captions mention a background only sometimes;
- language-dominant factors are always named and shown now and then (p = 1, q small): an evaluative tone
  word, the time of day, the place and the season, whose visual cues (a bar along the top, bottom, left
  or right edge) appear only sometimes;
- the pure extremes: the shape's outline is shown but never named (p = 0), the caption's sentence frame
  (template) is named but never shown (q = 0).

`WorldConfig.mention` and `WorldConfig.shown` override p and q, so a sweep of either is a continuous
ground truth. `generate` returns the images, the captions and a table of every sample's true factor
values with whether each was shown and named, so later chapters can check what a feature encodes.
"""
from __future__ import annotations

import dataclasses
import re
import zlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from mdsgap.config import check_fields

Kind = Literal["cross-modal", "vision-dominant", "language-dominant", "vision-only", "language-only"]
KINDS: tuple[str, ...] = ("cross-modal", "vision-dominant", "language-dominant", "vision-only", "language-only")


@dataclass(frozen=True)
class Factor:
    """One generative factor of the world: its values and how often each modality carries it."""

    name: str
    values: tuple[str, ...]
    shown: float
    """Default probability q that the image shows the factor."""
    named: float
    """Default probability p that the caption names the factor."""
    doc: str


FACTORS: tuple[Factor, ...] = (
    Factor("shape", ("circle", "square", "triangle", "cross"), 1.0, 1.0, "the object's shape; the caption's noun"),
    Factor("colour", ("red", "green", "blue", "yellow", "purple", "orange"), 1.0, 1.0, "the object's fill colour"),
    Factor("shade", ("pale", "deep"), 1.0, 1.0, "how light the fill colour is ('a pale red circle')"),
    Factor("tint", ("warm", "cool"), 1.0, 1.0, "a warm or cool cast over the whole image ('tinted warm')"),
    Factor("size", ("small", "large"), 1.0, 0.25, "the object's radius"),
    Factor("position", ("top left", "top right", "bottom left", "bottom right"), 1.0, 0.25,
           "the quadrant the object sits in"),
    Factor("texture", ("plain", "striped", "checked", "dotted"), 1.0, 0.25,
           "the background pattern ('on a striped background')"),
    Factor("backdrop", ("bright", "dim"), 1.0, 0.25, "the background's brightness ('on a dim background')"),
    Factor("outline", ("dark", "light"), 1.0, 0.0, "the colour of the object's rim; never named"),
    Factor("tone", ("lovely", "boring", "strange", "calm"), 0.25, 1.0,
           "an evaluative word; the image shows it only as a bar pattern along its top edge"),
    Factor("time", ("day", "night"), 0.25, 1.0,
           "'by day' or 'at night'; the image shows it only as a light or dark bar along its bottom edge"),
    Factor("place", ("indoors", "outdoors", "underwater", "underground"), 0.25, 1.0,
           "where the scene is; the image shows it only as a coloured bar along its left edge"),
    Factor("season", ("spring", "summer", "autumn", "winter"), 0.25, 1.0,
           "'in spring' ...; the image shows it only as a bar pattern along its right edge"),
    Factor("template", ("a {}", "a picture of a {}", "there is a {} here", "my drawing of a {}"), 0.0, 1.0,
           "the caption's sentence frame; never in the image"),
)
FACTOR_BY_NAME = {f.name: f for f in FACTORS}
CUES = ("tone", "time", "place", "season")
"""Factors whose visual cue is optional, so their shown probability q can be set; every other factor is
always shown (q = 1) except the template, never shown (q = 0)."""
NAMEABLE = tuple(f.name for f in FACTORS if f.name != "template")
"""Factors whose naming probability p can be set (the template frames every caption: p = 1)."""
VISIBLE = tuple(f.name for f in FACTORS if f.shown == 1.0 and f.name not in CUES)
"""Factors every image shows; zero-shot classification is defined for those a caption can name."""
ZERO_SHOT = tuple(f.name for f in FACTORS if f.shown == 1.0 and f.name != "outline")
"""Factors read by zero-shot classification: always shown and named by at least some captions."""
ALWAYS_NAMED = tuple(f.name for f in FACTORS if f.shown == 1.0 and f.named == 1.0)
"""Factors shown and named in every pair of the default world (the cross-modal ones)."""

TIME_WORDS = {"day": "by day", "night": "at night"}


def ideal_share(q: float | np.ndarray, p: float | np.ndarray) -> float | np.ndarray:
    """The image's share of a factor, q / (q + p): of the times either modality carries it, how often the
    image does. 1 for vision-only, 0 for language-only, 1/2 for cross-modal (NaN when q = p = 0)."""
    q, p = np.asarray(q, dtype=float), np.asarray(p, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(q + p > 0, q / (q + p), np.nan)
    return out if out.ndim else float(out)


def kind_of(q: float, p: float) -> str:
    """The factor's kind from its image share q / (q + p): only (1 or 0), dominant (beyond 2/3 or 1/3) or
    cross-modal (between 1/3 and 2/3, inclusive)."""
    s = ideal_share(q, p)
    if not np.isfinite(s):
        raise ValueError("A factor neither shown nor named (q = p = 0) belongs to no modality.")
    if s == 1.0:
        return "vision-only"
    if s == 0.0:
        return "language-only"
    return "vision-dominant" if s > 2 / 3 else "language-dominant" if s < 1 / 3 else "cross-modal"


TINT = ((18.0, 4.0, -18.0), (-18.0, 0.0, 18.0))
"""The cast each tint adds to every pixel (order follows FACTORS["tint"].values)."""
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
    mention: dict[str, float] = field(default_factory=dict)
    """Probability p that the caption names each factor; factors left out keep their declared default
    (after construction the dict holds every nameable factor). An unnamed shape reads "shape"."""
    shown: dict[str, float] = field(default_factory=dict)
    """Probability q that the image shows each optional cue (`CUES`); left out: the declared default."""
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
        for what, given, allowed in (("mention", self.mention, NAMEABLE), ("shown", self.shown, CUES)):
            for name, prob in given.items():
                if name not in allowed:
                    raise ValueError(f"{what} names {name!r}, which cannot be set here. Settable: {list(allowed)}")
                if not 0.0 <= float(prob) <= 1.0:
                    raise ValueError(f"{what} probability of {name!r} must be in [0, 1], got {prob}.")
        object.__setattr__(self, "mention", {n: float(self.mention.get(n, FACTOR_BY_NAME[n].named)) for n in NAMEABLE})
        object.__setattr__(self, "shown", {n: float(self.shown.get(n, FACTOR_BY_NAME[n].shown)) for n in CUES})
        object.__setattr__(self, "correlations", tuple(
            c if isinstance(c, Correlation) else Correlation(**c) for c in self.correlations))

    def q(self, name: str) -> float:
        """Probability that the image shows factor `name`."""
        return self.shown.get(name, FACTOR_BY_NAME[name].shown)

    def p(self, name: str) -> float:
        """Probability that the caption names factor `name`."""
        return self.mention.get(name, FACTOR_BY_NAME[name].named)

    def kind(self, name: str) -> str:
        """The factor's kind in this world (see `kind_of`)."""
        return kind_of(self.q(name), self.p(name))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


MENTION_SWEPT = ("colour", "shade", "tint", "size", "position")
"""The factors `mention_world` names with probability p: the shape's colour and look, its size and place."""


def mention_world(p: float, **kwargs) -> WorldConfig:
    """The default world with `MENTION_SWEPT` named with probability p (the rest as declared)."""
    return WorldConfig(mention={name: p for name in MENTION_SWEPT}, **kwargs)


@dataclass
class Pairs:
    """Images, captions and each sample's true factor values (one row per pair)."""

    images: np.ndarray  # (n, R, R, 3) uint8
    captions: list[str]
    factors: pd.DataFrame  # one column per factor, plus shown_<f> and mentioned_<f> for every factor

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
    """Compose one caption from factor values, naming the factors flagged in `mentioned`.

    Order: [tone] [size] [shade] [colour] shape [in the position] [on a backdrop texture background]
    [tinted tint] [with a outline rim] [by day | at night] [place] [in season], inside the template
    (default "a {}"). An unnamed shape becomes the generic noun "shape", so every caption stays a noun
    phrase.
    """
    said = lambda name: bool(mentioned.get(name)) and name in values
    words = [values["tone"]] if said("tone") else []
    words += [values[name] for name in ("size", "shade", "colour") if said(name)]
    words.append(values["shape"] if said("shape") else "shape")
    if said("position"):
        words += ["in the", values["position"]]
    background = [values[n] for n in ("backdrop", "texture") if said(n)]
    if background:
        words += ["on a", *background, "background"]
    if said("tint"):
        words += ["tinted", values["tint"]]
    if said("outline"):
        words += ["with a", values["outline"], "rim"]
    if said("time"):
        words.append(TIME_WORDS[values["time"]])
    if said("place"):
        words.append(values["place"])
    if said("season"):
        words += ["in", values["season"]]
    return re.sub(r"\ba (?=[aeiou])", "an ", values.get("template", "a {}").format(" ".join(words)))


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


def _background(texture: np.ndarray, backdrop: np.ndarray, R: int, contrast: float,
                rng: np.random.Generator) -> np.ndarray:
    """Grey background patterns around a bright (165) or dim (105) grey, (n, R, R) in 0-255; contrast 1
    spans +-40 levels."""
    yy, xx = np.mgrid[0:R, 0:R]
    period = max(4, R // 8)
    a = 40.0 * contrast
    stripes = np.where(((xx + yy) // (period // 2)) % 2 == 0, a, -a)
    checks = np.where(((xx // period) + (yy // period)) % 2 == 0, a, -a)
    dot = ((xx % period) - period / 2) ** 2 + ((yy % period) - period / 2) ** 2 <= (period / 4) ** 2 + 0.5
    dots = np.where(dot, -1.5 * a, 0.3 * a)
    plain = np.zeros((R, R))
    bank = np.stack([plain, stripes, checks, dots]).astype(np.float32)  # order follows FACTORS["texture"].values
    shift = rng.integers(0, period, size=(len(texture), 2))
    bg = bank[texture]
    # Random phase so a texture is a pattern, not a fixed pixel template.
    rows = (np.arange(R)[None, :] + shift[:, :1]) % R
    cols = (np.arange(R)[None, :] + shift[:, 1:]) % R
    level = np.array([165.0, 105.0], dtype=np.float32)[backdrop]  # order follows FACTORS["backdrop"].values
    return bg[np.arange(len(texture))[:, None, None], rows[:, :, None], cols[:, None, :]] + level[:, None, None]


def _cue_bars(img: np.ndarray, codes: dict[str, np.ndarray], shown: dict[str, np.ndarray], R: int) -> None:
    """Paint the optional cues in place, on the samples where they are shown: tone as a bar pattern along
    the top edge, time as a light (day) or dark (night) bar along the bottom edge, the place as a bar of
    its own colour along the left edge, the season as a bar pattern along the right edge."""
    h = max(2, round(3 * R / 32))
    xx = np.arange(R)
    period = max(4, R // 8)
    patterns = np.stack([np.full(R, 235.0), np.full(R, 20.0),  # order follows the tone and season values
                         np.where((xx // 2) % 2 == 0, 235.0, 20.0), np.where((xx // period) % 2 == 0, 235.0, 20.0)])
    colours = {"time": [(240.0, 225.0, 140.0), (25.0, 25.0, 70.0)],  # day, night
               "place": [(190.0, 150.0, 100.0), (40.0, 160.0, 160.0), (200.0, 60.0, 140.0), (70.0, 50.0, 30.0)]}
    side = np.s_[h:R - h]  # the side bars leave the corners to the top and bottom bars
    for name, where in (("tone", np.s_[:h, :]), ("time", np.s_[R - h:, :]), ("place", (side, np.s_[:h])),
                        ("season", (side, np.s_[R - h:]))):
        if name not in shown:
            continue
        i = np.flatnonzero(shown[name])
        if name in colours:
            paint = np.array(colours[name], dtype=np.float32)[codes[name][i]][:, None, None, :]
        elif name == "tone":
            paint = patterns[codes[name][i]][:, None, :, None]
        else:
            paint = patterns[codes[name][i]][:, side, None, None]
        img[(i, *where)] = paint


def render(codes: dict[str, np.ndarray], R: int, noise: float, contrast: float, rng: np.random.Generator,
           shown: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Draw images for factor codes: (n, R, R, 3) uint8, vectorised over the batch; `shown` flags, per cue
    factor, the samples whose image shows it (none by default). Cues draw no random numbers."""
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
    pale = (codes["shade"] == 0)[:, None]  # pale: half way to white; deep: 65% of the colour
    rgb = np.where(pale, 0.5 * rgb + 128.0, 0.65 * rgb)
    rgb += rng.uniform(-12, 12, (n, 3)).astype(np.float32)
    bg = _background(codes["texture"], codes["backdrop"], R, contrast, rng).astype(np.float32)
    rim = sdf > -0.22 * radius[:, None, None]
    rim_level = np.where(codes["outline"] == 0, 20.0, 245.0).astype(np.float32)[:, None, None, None]
    fill = np.where(rim[..., None], rim_level, rgb[:, None, None, :])
    img = np.where((sdf <= 0)[..., None], fill, bg[..., None])
    _cue_bars(img, codes, shown or {}, R)
    img += np.array(TINT, dtype=np.float32)[codes["tint"]][:, None, None, :]
    if noise > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise)
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw(cfg: WorldConfig, n: int, seed: int, split: str, chunk: int, values: dict | None = None):
    """The random stream of `generate`: factor codes, naming and showing flags, and images; `values`
    ({factor: codes}) replaces factors just before drawing, so the images differ only where they show."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    rng = np.random.default_rng(_split_seed(seed, split))
    codes = sample_factors(cfg, n, rng)
    mentioned = {name: rng.random(n) < cfg.p(name) for name in NAMEABLE}
    shown = {name: rng.random(n) < cfg.q(name) for name in CUES}
    drawn = {**codes, **(values or {})}
    images = np.concatenate([
        render({k: v[i:i + chunk] for k, v in drawn.items()}, cfg.resolution, cfg.noise, cfg.texture_contrast, rng,
               {k: v[i:i + chunk] for k, v in shown.items()})
        for i in range(0, n, chunk)])
    return codes, mentioned, shown, images


def generate(cfg: WorldConfig, n: int, seed: int = 0, split: str = "train", chunk: int = 4096) -> Pairs:
    """Generate n pairs deterministically from (seed, split); different splits never share a stream."""
    codes, mentioned, shown, images = _draw(cfg, n, seed, split, chunk)
    table = pd.DataFrame({f.name: pd.Categorical.from_codes(codes[f.name], categories=list(f.values)) for f in FACTORS})
    for f in FACTORS:
        table[f"shown_{f.name}"] = shown[f.name] if f.name in CUES else np.full(n, f.shown == 1.0)
        table[f"mentioned_{f.name}"] = mentioned[f.name] if f.name in NAMEABLE else np.ones(n, dtype=bool)
    names = {f.name: np.asarray(f.values, dtype=object)[codes[f.name]] for f in FACTORS}
    captions = [caption({k: names[k][i] for k in names}, {k: mentioned[k][i] for k in NAMEABLE}) for i in range(n)]
    table["caption"] = captions
    return Pairs(images, captions, table)


def redraw(cfg: WorldConfig, n: int, seed: int = 0, split: str = "train", chunk: int = 4096, **values) -> np.ndarray:
    """The images of `generate(cfg, n, seed, split)` with some factors set to other values, e.g.
    redraw(cfg, 64, 0, "test", colour=["red", "blue", ...]): the same pictures (same jitter, texture and
    noise) showing the new values: the counterfactual images of those pairs."""
    unknown = sorted(set(values) - set(FACTOR_BY_NAME))
    if unknown:
        raise ValueError(f"redraw: unknown factor(s) {unknown}; factors: {[f.name for f in FACTORS]}.")
    codes = {}
    for name, vals in values.items():
        index = {v: i for i, v in enumerate(FACTOR_BY_NAME[name].values)}
        bad = sorted({str(v) for v in vals} - set(index))
        if bad or len(vals) != n:
            raise ValueError(f"redraw: {name} needs one value per pair ({n}) from {list(index)}; got "
                             f"{len(vals)} values, unknown {bad}.")
        codes[name] = np.array([index[str(v)] for v in vals])
    return _draw(cfg, n, seed, split, chunk, codes)[3]


def of_kind(kind: str, cfg: WorldConfig | None = None) -> tuple[str, ...]:
    """The factors of one kind (see `kind_of`) in the world `cfg` (default: the default world)."""
    if kind not in KINDS:
        raise ValueError(f"Unknown kind {kind!r}; kinds: {list(KINDS)}.")
    cfg = cfg or WorldConfig()
    return tuple(f.name for f in FACTORS if cfg.kind(f.name) == kind)


def factor_table(cfg: WorldConfig | None = None) -> pd.DataFrame:
    """The declared factors as a table for the book: values, q, p, the image share q/(q+p) and the kind."""
    cfg = cfg or WorldConfig()
    return pd.DataFrame([{"factor": f.name, "values": ", ".join(f.values), "shown (q)": cfg.q(f.name),
                          "named (p)": cfg.p(f.name), "image share": ideal_share(cfg.q(f.name), cfg.p(f.name)),
                          "kind": cfg.kind(f.name), "what": f.doc} for f in FACTORS])
