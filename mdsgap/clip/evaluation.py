"""What a CLIP can do with its embeddings: zero-shot factor classification and retrieval.

Zero-shot on the world: each value of a factor that every image shows and some captions name
(`world.ZERO_SHOT`) becomes a class whose text embedding is the mean over prompts that name only that
value and the words every caption carries (the shape, the caption's noun, and the other always-named
factors), in every caption template, as CLIP's prompt ensembling does. Retrieval scores matched pairs by cosine similarity.
"""
from __future__ import annotations

import itertools
import zlib

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mdsgap import world
from mdsgap.clip.models import Clip


MAX_COMBOS = 192
"""Most combinations of the always-named factors' values per template and class: beyond it a fixed random
sample of the full grid (which grows as a product over factors)."""


def readable(cfg: world.WorldConfig | None = None) -> tuple[str, ...]:
    """Factors zero-shot classification can read in a world: shown in every image and named by some captions
    (`world.ZERO_SHOT` in the default world)."""
    cfg = cfg or world.WorldConfig()
    return tuple(f.name for f in world.FACTORS if f.name != "template" and cfg.q(f.name) == 1.0
                 and cfg.p(f.name) > 0)


def prompts(factor: str, value: str, templates=None, cfg: world.WorldConfig | None = None) -> list[str]:
    """Captions that name `value` of a factor and nothing else the image always shows, except what every
    caption of the world `cfg` (default: the default world) names (there: the cross-modal and the
    language-dominant factors): those run through their values (all combinations, or `MAX_COMBOS` of them
    drawn once per factor), in the given caption templates (default: all of the world's), so every prompt is
    a caption the model could have seen, as CLIP's prompt ensembling uses its training captions' phrasings."""
    cfg = cfg or world.WorldConfig()
    if factor not in readable(cfg):
        raise ValueError(f"Zero-shot prompts exist for factors every image shows and captions can name: "
                         f"{list(readable(cfg))}, not {factor!r}.")
    known = world.FACTOR_BY_NAME["template"].values
    templates = known if templates is None else tuple(templates)
    unknown = [t for t in templates if t not in known]
    if unknown:
        raise ValueError(f"Unknown caption template(s) {unknown}. The world's templates: {list(known)}")
    always = [f.name for f in world.FACTORS if f.name not in ("template", factor) and cfg.p(f.name) == 1.0]
    grid = [world.FACTOR_BY_NAME[name].values for name in always]
    combos = list(itertools.islice(itertools.product(*grid), MAX_COMBOS + 1))
    if len(combos) > MAX_COMBOS:  # a fixed sample of the grid, the same for every value of the factor
        sizes = [len(v) for v in grid]
        rng = np.random.default_rng(zlib.crc32(factor.encode()))
        picks = rng.choice(int(np.prod(sizes)), MAX_COMBOS, replace=False)
        combos = [tuple(v[i] for v, i in zip(grid, np.unravel_index(k, sizes))) for k in np.sort(picks)]
    named = {name: True for name in always} | {factor: True}
    return [world.caption(dict(zip(always, combo), template=template, **{factor: value}), named)
            for template in templates for combo in combos]


def class_embeddings(clip: Clip, factor: str, templates=None, cfg: world.WorldConfig | None = None) -> torch.Tensor:
    """(n_values, d) unit text embeddings, one per value of a zero-shot factor (prompt ensemble over templates)."""
    rows = []
    for value in world.FACTOR_BY_NAME[factor].values:
        e = F.normalize(clip.encode_texts(prompts(factor, value, templates, cfg)), dim=-1).mean(0)
        rows.append(F.normalize(e, dim=0))
    return torch.stack(rows)


def zero_shot_predict(image_emb: torch.Tensor, classes: torch.Tensor) -> np.ndarray:
    """Index of the most cosine-similar class for each image embedding (both sides normalised, as CLIP does)."""
    return (F.normalize(image_emb.float(), dim=-1) @ F.normalize(classes.float(), dim=-1).T).argmax(1).numpy()


def zero_shot_classes(clip: Clip, templates=None) -> dict[str, torch.Tensor]:
    """Class embeddings of every zero-shot factor (`world.ZERO_SHOT`), {factor: (n_values, d)}."""
    return {name: class_embeddings(clip, name, templates) for name in world.ZERO_SHOT}


def zero_shot_scores(image_emb: torch.Tensor, classes: dict[str, torch.Tensor], factors: pd.DataFrame) -> pd.DataFrame:
    """Zero-shot accuracy per factor from precomputed class embeddings, with chance beside it."""
    rows = []
    for name, cls in classes.items():
        pred = zero_shot_predict(image_emb, cls)
        truth = factors[name].cat.codes.to_numpy()
        rows.append({"factor": name, "accuracy": float((pred == truth).mean()),
                     "chance": 1 / len(world.FACTOR_BY_NAME[name].values)})
    return pd.DataFrame(rows)


def zero_shot(clip: Clip, image_emb: torch.Tensor, factors: pd.DataFrame) -> pd.DataFrame:
    """Zero-shot accuracy on every zero-shot factor, with chance (1 / number of values) beside it."""
    return zero_shot_scores(image_emb, zero_shot_classes(clip), factors)


def recall_at_k(query: torch.Tensor, keys: torch.Tensor, ks=(1, 5, 10)) -> dict[int, float]:
    """Share of queries whose matched key (same row) ranks within the top k by cosine similarity."""
    sim = F.normalize(query.float(), dim=-1) @ F.normalize(keys.float(), dim=-1).T
    rank = (sim > sim.diagonal()[:, None]).sum(1)  # keys strictly more similar than the match
    return {k: float((rank < k).float().mean()) for k in ks}


def consistent(factors, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Whether caption j is true of image i: every factor it names that image i shows has image i's value
    (a named cue, such as the tone, is true of an image that does not show it). `factors` is the world's factor
    table or its `naming` arrays (read once where many pairings are scored)."""
    ok = np.ones(len(i), dtype=bool)
    for shown, named, vals in naming(factors) if isinstance(factors, pd.DataFrame) else factors:
        ok &= ~named[j] | ~shown[i] | (vals[j] == vals[i])
    return ok


def naming(factors: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per nameable factor, the arrays `consistent` reads: (shown, mentioned, value code) of each pair."""
    return [(factors[f"shown_{n}"].to_numpy(), factors[f"mentioned_{n}"].to_numpy(),
             factors[n].cat.codes.to_numpy()) for n in world.NAMEABLE]


def retrieval(image_emb: torch.Tensor, text_emb: torch.Tensor, factors: pd.DataFrame | None = None,
              ks=(1, 5, 10), seed: int = 0) -> pd.DataFrame:
    """Image-to-text and text-to-image recall@k with chance k/n; on the world also caption consistency.

    Recall@k counts only the exact partner; on the world many captions fit an image equally, so
    'consistent@1' (the top caption is true of the image) is the fairer score, with its chance rate
    measured on random captions.
    """
    n = len(image_emb)
    rows = []
    for direction, (q, k) in {"image→text": (image_emb, text_emb), "text→image": (text_emb, image_emb)}.items():
        for kk, r in recall_at_k(q, k, ks).items():
            rows.append({"direction": direction, "metric": f"recall@{kk}", "value": r, "chance": min(1.0, kk / n)})
    if factors is not None:
        sim = F.normalize(image_emb.float(), dim=-1) @ F.normalize(text_emb.float(), dim=-1).T
        top = sim.argmax(1).numpy()
        i = np.arange(n)
        rng = np.random.default_rng(seed)
        rows.append({"direction": "image→text", "metric": "consistent@1",
                     "value": float(consistent(factors, i, top).mean()),
                     "chance": float(consistent(factors, i, rng.integers(0, n, n)).mean())})
    return pd.DataFrame(rows)
