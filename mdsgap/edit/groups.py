"""A group attribute that CLIP reads unequally, and which modality class carries each group.

Yan et al. (2026) probe CLIP's perception of gender: zero-shot accuracy per gender, and how much of each
gender's concept survives removing each modality class (ImgD, TxtD, CMD) of SAE latents. The world's
analogue: the rim of the shape (dark or light) is the group attribute, shown in every image and named in
every caption; in training every light-rimmed shape is also large (a spurious correlation), so on
balanced held-out pairs the CLIP reads small light-rimmed shapes worse. Any labelling of the latents
(the paper's MDS classes, the probe partners of `comparison`) can be edited out, beside random latent sets
matched on what they carry (`mdsgap.edit.control`), the control the paper's study lacked.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mdsgap import gap, world
from mdsgap.clip import evaluation
from mdsgap.edit import editing
from mdsgap.config import check_fields


@dataclass(frozen=True)
class GroupStudyConfig:
    """The group attribute, its spurious correlate in training, and the fine-tuning that teaches both."""

    factor: str = "outline"
    """The group attribute: a world factor every image shows; every caption names it in this study."""
    confounded: str = "light"
    """The group whose training images always carry the correlate."""
    correlate: str = "size"
    correlate_value: str = "large"
    strength: float = 1.0
    """Probability that a training image of the confounded group carries the correlate's value."""
    finetune_steps: int = 150
    """Steps of fine-tuning the subject CLIP on the correlated world."""
    finetune_lr: float = 1e-3
    """Peak learning rate of the fine-tuning (its own, not the subject's training rate)."""

    def __post_init__(self):
        check_fields(self)
        f = world.FACTOR_BY_NAME.get(self.factor)
        if f is None or f.name in world.CUES or f.name == "template":
            raise ValueError(f"The group factor must be one every image shows, not {self.factor!r}. "
                             f"Choose from {[n for n in world.VISIBLE]}.")
        if self.correlate == self.factor:
            raise ValueError("The correlate must be another factor than the group attribute.")
        world.Correlation(self.factor, self.confounded, self.correlate, self.correlate_value, self.strength)
        if self.finetune_steps < 1:
            raise ValueError(f"finetune_steps must be at least 1, got {self.finetune_steps}.")

    @property
    def groups(self) -> tuple[str, ...]:
        return world.FACTOR_BY_NAME[self.factor].values

    def balanced_world(self) -> world.WorldConfig:
        """The world every measurement uses: the group attribute named, no correlation."""
        return world.WorldConfig(mention={self.factor: 1.0})

    def training_world(self) -> world.WorldConfig:
        """The fine-tuning world: the group attribute named, and the confounded group tied to the correlate."""
        tie = world.Correlation(self.factor, self.confounded, self.correlate, self.correlate_value, self.strength)
        return world.WorldConfig(mention={self.factor: 1.0}, correlations=(tie,))

    def train_config(self, base, seed: int):
        """The TrainConfig that fine-tunes the CLIP of `base` (a TrainConfig) on the correlated world."""
        return dataclasses.replace(base, steps=self.finetune_steps, lr=self.finetune_lr,
                                   world=self.training_world(), init=base.to_dict(), seed=seed)


def readings(image_emb: torch.Tensor, classes: torch.Tensor, groups) -> pd.DataFrame:
    """Per image: its true group, whether zero-shot reads it right, and the margin (cosine to its own group's
    class minus the best other class), the quantity an edit can erode before the reading flips.

    `classes` (n_groups, d) are the groups' class embeddings in the order of their values; `groups` holds
    each image's group as an index into them.
    """
    g = _groups(groups, len(image_emb))
    correct, margin = _read(image_emb, classes, g)
    return pd.DataFrame({"group": g, "correct": correct, "margin": margin})


def _groups(groups, n: int) -> np.ndarray:
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != n:
        raise ValueError(f"groups must give one group per image: {n} images, got shape {g.shape}.")
    return g


def _read(image_emb: torch.Tensor, classes: torch.Tensor, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`readings`' two columns as arrays: correct and margin."""
    sims = (F.normalize(image_emb.float(), dim=-1) @ F.normalize(classes.float(), dim=-1).T).numpy()
    own = sims[np.arange(len(g)), g]
    others = sims.copy()
    others[np.arange(len(g)), g] = -np.inf
    return sims.argmax(1) == g, own - others.max(1)


def by_group(r: pd.DataFrame, names) -> pd.DataFrame:
    """Accuracy and mean margin per group (one row each, named by `names`)."""
    out = r.groupby("group").agg(accuracy=("correct", "mean"), margin=("margin", "mean"), images=("correct", "size"))
    out.index = [names[i] for i in out.index]
    return out


def accuracy_gap(r: pd.DataFrame, confounded: int) -> float:
    """Zero-shot accuracy of the other groups minus that of the confounded group (positive: it is read worse)."""
    return _gap(r.correct.to_numpy(), r.group.to_numpy(), confounded)


def _gap(hit: np.ndarray, g: np.ndarray, confounded: int) -> float:
    mine = g == confounded
    return float(hit[~mine].mean() - hit[mine].mean())


def removal_readout(model, x: torch.Tensor, classes: torch.Tensor, groups, confounded: int, names):
    """A readout for `control.compare`: latents -> after removing them from the test images and the groups'
    class embeddings alike, the `accuracy_gap` ("gap") and per group its accuracy ("accuracy <g>"), mean
    margin ("margin <g>") and the share of its plain-reconstruction margin kept ("kept <g>"). Group means
    are taken on arrays (the readout runs hundreds of times; a pandas groupby per call cost most of it)."""
    g = _groups(groups, len(x))
    members = [(names[k], g == k) for k in np.unique(g)]
    with torch.no_grad():
        zx, zc = model.encode(gap.normalize(x).float()), model.encode(gap.normalize(classes).float())

    def read(latents) -> tuple[float, dict]:
        with torch.no_grad():
            hit, margin = _read(model.decode(editing.zeroed(zx, latents)),
                                model.decode(editing.zeroed(zc, latents)), g)
        return (_gap(hit, g, confounded) if confounded is not None else np.nan,
                {name: (float(hit[m].mean()), float(margin[m].mean())) for name, m in members})

    plain = read([])[1]

    def run(latents) -> dict:
        gap_, means = read(latents)
        out = {"gap": gap_}
        for name, (accuracy, margin) in means.items():  # a share of a margin that was not positive means nothing
            was = plain[name][1]
            out.update({f"accuracy {name}": accuracy, f"margin {name}": margin,
                        f"kept {name}": margin / was if was > 1e-6 else np.nan})
        return out
    return run


def class_embeddings(clip, study: GroupStudyConfig) -> torch.Tensor:
    """The groups' zero-shot class embeddings in the study's balanced world (prompt ensembles that name the
    group attribute and run through every always-named word, as `evaluation.class_embeddings`)."""
    return evaluation.class_embeddings(clip, study.factor, cfg=study.balanced_world())


def prompt_classes(clip, prompts: dict[str, list[str]]) -> tuple[torch.Tensor, list[str]]:
    """Class embeddings for a real dataset's groups from user prompts {group: [prompt, ...]}: the normalised
    mean of each group's prompt embeddings (CLIP's prompt ensembling); returns them and the group names."""
    if len(prompts) < 2 or any(not p for p in prompts.values()):
        raise ValueError("Give at least two groups, each with at least one prompt, e.g. "
                         "{'female': ['a photo of a woman'], 'male': ['a photo of a man']}.")
    rows = [F.normalize(F.normalize(clip.encode_texts(list(p)), dim=-1).mean(0), dim=0) for p in prompts.values()]
    return torch.stack(rows), list(prompts)


def group_codes(values, names) -> np.ndarray:
    """Each sample's group as an index into `names`, with a clear error for a value that is not a group."""
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted({str(v) for v in values if str(v) not in index})
    if unknown:
        raise ValueError(f"Group value(s) {unknown[:5]} have no prompts. Groups with prompts: {list(names)}; add "
                         f"prompts for them or leave those rows out.")
    return np.array([index[str(v)] for v in values])

