"""A group attribute that CLIP reads unequally, and which modality class carries each group.

Yan et al. (2026) probe CLIP's perception of gender: zero-shot accuracy per gender, and how much of each
gender's concept survives removing each modality class (ImgD, TxtD, CMD) of SAE latents. The world's
analogue: the rim of the shape (dark or light) is the group attribute, shown in every image and named in
every caption; in training every light-rimmed shape is also large (a spurious correlation), so on
balanced held-out pairs the CLIP reads small light-rimmed shapes worse. Any labelling of the latents
(the paper's MDS classes, the probe partners of `comparison`) can be edited out, beside random latent sets
of the same size, which is the control the paper's study lacked.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mdsgap import editing, evaluation, world
from mdsgap.params import check_fields


@dataclass(frozen=True)
class GroupStudy:
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
        return dataclasses.replace(base, steps=self.finetune_steps, world=self.training_world(),
                                   init=base.to_dict(), seed=seed)


def readings(image_emb: torch.Tensor, classes: torch.Tensor, groups) -> pd.DataFrame:
    """Per image: its true group, whether zero-shot reads it right, and the margin (cosine to its own group's
    class minus the best other class), the quantity an edit can erode before the reading flips.

    `classes` (n_groups, d) are the groups' class embeddings in the order of their values; `groups` holds
    each image's group as an index into them.
    """
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != len(image_emb):
        raise ValueError(f"groups must give one group per image: {len(image_emb)} images, got shape {g.shape}.")
    sims = (F.normalize(image_emb.float(), dim=-1) @ F.normalize(classes.float(), dim=-1).T).numpy()
    own = sims[np.arange(len(g)), g]
    others = sims.copy()
    others[np.arange(len(g)), g] = -np.inf
    return pd.DataFrame({"group": g, "correct": sims.argmax(1) == g, "margin": own - others.max(1)})


def by_group(r: pd.DataFrame, names) -> pd.DataFrame:
    """Accuracy and mean margin per group (one row each, named by `names`)."""
    out = r.groupby("group").agg(accuracy=("correct", "mean"), margin=("margin", "mean"), images=("correct", "size"))
    out.index = [names[i] for i in out.index]
    return out


def accuracy_gap(r: pd.DataFrame, confounded: int) -> float:
    """Zero-shot accuracy of the other groups minus that of the confounded group (positive: it is read worse)."""
    hit = r.correct.to_numpy()
    mine = r.group.to_numpy() == confounded
    return float(hit[~mine].mean() - hit[mine].mean())


def removal(model, x: torch.Tensor, classes: torch.Tensor, groups, labellings: dict[str, np.ndarray],
            confounded: int, names, n_random: int = 20, seed: int = 0) -> pd.DataFrame:
    """Per-group zero-shot reading after removing each class of each labelling, and random same-size sets.

    One row per (labelling, edit, group): `removed` (a class, 'random, <class>-sized' or 'nothing' for the
    plain reconstruction), `kind`, `set` (the random draw), `size`, the group's `accuracy` and `margin`,
    `kept` (its margin as a share of the plain reconstruction's) and the edit's `gap` (`accuracy_gap`). The
    class embeddings go through the same edit as the images, as in `editing.class_removal`.
    """
    def run(latents) -> pd.DataFrame:
        edit = lambda e: editing.without_latents(model, e, latents)
        r = readings(edit(x), edit(classes), groups)
        return by_group(r, names).assign(gap=accuracy_gap(r, confounded))

    plain = run([])
    rows = [plain.assign(labelling="none", removed="nothing", kind="none", set=0, size=0)]
    for j, (name, labels) in enumerate(labellings.items()):
        for removed, kind, k, latents in editing.removal_sets(labels, n_random, seed=seed + 1000 * j):
            rows.append(run(latents).assign(labelling=name, removed=removed, kind=kind, set=k, size=len(latents)))
    out = pd.concat(rows).rename_axis("group").reset_index()
    base = plain.margin.reindex(out.group).to_numpy()
    out["kept"] = out.margin.to_numpy() / base
    return out


def against_random(edits: pd.DataFrame, value: str = "gap") -> pd.DataFrame:
    """Per labelling and class, over seeds (`edits` has a `seed` column): the change of `value` from the plain
    reconstruction when the class is removed (mean and 95% interval over seeds), beside the changes of its
    random same-size sets (mean and 95% range), and the share of random sets that lower it more (ties count
    half). `value` is "gap" (one per edit) or a per-group column such as "kept" or "accuracy" (one row per
    group)."""
    from mdsgap import stats

    keys = ["seed", "labelling", "removed", "set"] + ([] if value == "gap" else ["group"])
    per = edits.drop_duplicates(keys)
    idx = ["seed"] + keys[4:]
    base = per[per.kind == "none"].set_index(idx)[value].rename("base")
    per = per.join(base, on=idx)
    per["change"] = per[value] - per["base"]
    by = ["labelling", "removed"] + keys[4:]
    rows = []
    for key, c in per[per.kind == "class"].groupby(by, sort=False):
        name, cls, *group = key
        rand = per[(per.labelling == name) & (per.removed == f"random, {cls}-sized")]
        if group:
            rand = rand[rand.group == group[0]]
        mean, lo, hi = stats.interval(c.change.to_numpy())
        lower = np.mean([(rand[rand.seed == s].change < v).mean() + 0.5 * (rand[rand.seed == s].change == v).mean()
                         for s, v in zip(c.seed, c.change)])
        rows.append({"labelling": name, "class": cls, **({"group": group[0]} if group else {}),
                     "size": float(c["size"].mean()), f"{value} change": mean, "low": lo, "high": hi,
                     "random (mean)": rand.change.mean(), "random 2.5%": rand.change.quantile(0.025),
                     "random 97.5%": rand.change.quantile(0.975), "random sets lowering it more": lower})
    return pd.DataFrame(rows)


def distinguishable(row, level: float = 0.05) -> bool:
    """Whether a class's gap change lies outside its random sets' central (1 - level) share (two-sided)."""
    share = row["random sets lowering it more"]
    return bool(share < level / 2 or share > 1 - level / 2)


def class_embeddings(clip, study: GroupStudy) -> torch.Tensor:
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

