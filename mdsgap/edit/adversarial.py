"""Cross-modal adversarial examples: pixel-space attacks whose objective lives in one class of latents.

Yan et al. (2026) generate adversarial images by steering the features of one modality class toward those
of a target. Here the attack is projected gradient descent (PGD, Madry et al. 2018) under an L-infinity
budget on pixels in [0, 1]; its objective is the squared distance between the image's latents of one set and
those of a *target image*, the same picture showing the target value (`world.redraw`), where a latent's value
is its ReLU pre-activation (a TopK code has zero gradient for every latent outside the image's top k). Every
route then asks the same thing of its latents, to look like that image's, whatever side of the gap they
fire on (toward a caption, an image-only class would only be switched off and a caption-only class would
have to cross the gap). The whole-embedding attack, which pulls the image embedding toward the target
image's by cosine, is the reference; random sets drawn outside the class and matched on what they carry on
images (`mdsgap.edit.control`) are the control.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mdsgap.clip.models import Clip
from mdsgap.features.sae import SparseAutoencoder


def to_input(clip: Clip, pixels: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1], (n, 3, H, W), to the model's normalised input (differentiable; resized if needed)."""
    if pixels.shape[-1] != clip.image_size or pixels.shape[-2] != clip.image_size:
        pixels = F.interpolate(pixels, size=(clip.image_size, clip.image_size), mode="bilinear", align_corners=False)
    cfg = clip.model.visual.preprocess_cfg
    mean = torch.tensor(cfg["mean"], device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], device=pixels.device).view(1, 3, 1, 1)
    return (pixels - mean) / std


def pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 (n, H, W, 3) images to float pixels in [0, 1], (n, 3, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def latent_values(model: SparseAutoencoder, e: torch.Tensor) -> torch.Tensor:
    """Every latent's ReLU pre-activation on the unit embeddings of e, before TopK picks its k."""
    u = F.normalize(e, dim=-1)
    return F.relu((u - model.b_pre) @ model.W_enc + model.b_enc)


def feature_objective(model: SparseAutoencoder, latents, target: torch.Tensor) -> Callable:
    """Loss per image: squared distance between its values of `latents` and those of the target embedding(s)
    (one row, or one row per image)."""
    idx = torch.as_tensor(np.asarray(latents, dtype=np.int64))
    if len(idx) == 0:
        raise ValueError("A feature-space attack needs at least one latent.")
    with torch.no_grad():
        goal = latent_values(model, target)[:, idx]
    return lambda e: ((latent_values(model, e)[:, idx] - goal) ** 2).sum(1)


def embedding_objective(target: torch.Tensor) -> Callable:
    """Loss per image: minus the cosine between its embedding and the target embedding(s)."""
    goal = F.normalize(target, dim=-1)
    return lambda e: -(F.normalize(e, dim=-1) * goal).sum(1)


def pgd(clip: Clip, images: torch.Tensor, loss: Callable, eps: float, steps: int = 10,
        step_size: float | None = None) -> torch.Tensor:
    """Projected gradient descent on pixels (n, 3, H, W) in [0, 1]: minimise `loss` of the image embeddings
    within an L-infinity ball of radius eps; signed steps of 2.5 eps / steps (Madry et al.), no random start,
    so an attack is deterministic. Returns the adversarial pixels."""
    return pgd_many(clip, images, [(loss, eps)], steps, step_size)[0]


def pgd_many(clip: Clip, images: torch.Tensor, attacks: list[tuple[Callable, float]], steps: int = 10,
             step_size: float | None = None) -> list[torch.Tensor]:
    """`pgd` for several (loss, eps) attacks on the same images at once: one forward and backward pass over
    all their copies per step (a batch of a few hundred images runs several times faster per image on a CPU
    than one of 64); each copy's gradient is its own attack's. Returns the adversarial pixels per attack."""
    for _, eps in attacks:
        if eps < 0 or steps < 1:
            raise ValueError(f"eps must be >= 0 and steps >= 1, got eps={eps}, steps={steps}.")
    n = len(images)
    eps = torch.tensor([e for _, e in attacks], dtype=torch.float64).repeat_interleave(n).view(-1, 1, 1, 1)
    size = (2.5 * eps / steps if step_size is None else torch.full_like(eps, step_size)).float()
    eps = eps.float()
    model = clip.model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x0 = images.to(clip.device()).repeat(len(attacks), 1, 1, 1)
    eps, size = eps.to(x0.device), size.to(x0.device)
    x = x0.clone()
    for _ in range(steps if bool((eps > 0).any()) else 0):
        x.requires_grad_(True)
        e = model.encode_image(to_input(clip, x))
        value = sum(loss(e[i * n:(i + 1) * n]).sum() for i, (loss, _) in enumerate(attacks))
        grad, = torch.autograd.grad(value, x)
        with torch.no_grad():
            x = x - size * grad.sign()
            x = (x0 + (x - x0).clamp(-eps, eps)).clamp(0, 1)
    return list(x.detach().cpu().split(n))


@torch.no_grad()
def predict(clip: Clip, adv: torch.Tensor, classes: torch.Tensor) -> np.ndarray:
    """Zero-shot class of each adversarial image (pixels in [0, 1]) against class embeddings (n_classes, d)."""
    e = clip.model.encode_image(to_input(clip, adv.to(clip.device()))).float().cpu()
    return (F.normalize(e, dim=-1) @ F.normalize(classes.float(), dim=-1).T).argmax(1).numpy()


def targets(truth: np.ndarray, n_values: int, seed: int = 0) -> np.ndarray:
    """A target class for every image, drawn uniformly among the values it does not have."""
    rng = np.random.default_rng(seed)
    shift = rng.integers(1, n_values, len(truth))
    return (np.asarray(truth) + shift) % n_values


def target_rows(truth: np.ndarray, goal: np.ndarray, seed: int = 0) -> np.ndarray:
    """On real data, where no image can be redrawn with another value: for each image, another image of the
    same set whose label is the image's goal, drawn at random (seeded)."""
    truth, goal = np.asarray(truth), np.asarray(goal)
    rng = np.random.default_rng(seed)
    out = np.empty(len(goal), dtype=np.int64)
    for i, g in enumerate(goal):
        pool = np.flatnonzero((truth == g) & (np.arange(len(truth)) != i))
        if not len(pool):
            raise ValueError(f"No image labelled with value {g} to serve as a target: attack more images "
                             "(n_attack) or drop the values no image shows from the prompts.")
        out[i] = rng.choice(pool)
    return out


def fitted_images(images, size: int) -> np.ndarray:
    """PIL images of any sizes as uint8 (n, size, size, 3): centre-cropped to a square and resized, as
    CLIP's preprocessing does, so that pixels can be attacked in one batch."""
    from PIL import Image, ImageOps

    return np.stack([np.asarray(ImageOps.fit(im.convert("RGB"), (size, size), Image.BICUBIC)) for im in images])


def objectives(model: SparseAutoencoder, labellings: dict[str, np.ndarray], target: torch.Tensor,
               carry: pd.DataFrame, n_random: int = 3, seed: int = 0,
               classes=("ImgD", "TxtD", "CMD")) -> tuple[dict[tuple, Callable], dict]:
    """The attacks of one seed, keyed (labelling, set, kind): the whole embedding ('-', 'whole embedding',
    'reference'), every class of every labelling ('class') and `n_random` random sets per class drawn outside
    it and matched on what they carry on images ('random', set 'random, <class>-matched #k'); `target` holds
    the target image embedding of every image, `carry` what each latent carries (`control.carried`). Also
    returns {(labelling, class): the random sets' `control.overlap`}, which `against_random` needs."""
    from mdsgap.edit import control

    out, overlaps = {("-", "whole embedding", "reference"): embedding_objective(target)}, {}
    cfg = control.ControlConfig(n_random=n_random, seed=seed, match=control.IMAGE_SIDE)
    rng = np.random.default_rng(seed)
    for name, labels in labellings.items():
        pool = np.flatnonzero(np.isin(np.asarray(labels, dtype=object), classes))
        for cls in classes:
            members, sets, match = control.class_sets(labels, cls, pool, carry, cfg, rng)
            if sets is None:
                continue
            out[(name, cls, "class")] = feature_objective(model, members, target)
            overlaps[(name, cls)] = match["overlap"]
            for k, latents in enumerate(sets):
                out[(name, f"random, {cls}-matched #{k}", "random")] = feature_objective(model, latents, target)
    return out, overlaps


def attack_table(clip: Clip, images: np.ndarray, goal: np.ndarray, classes: torch.Tensor, attacks: dict,
                 budgets, steps: int = 10, second: tuple[Clip, torch.Tensor] | None = None,
                 keep: tuple | None = None, batch: int = 256) -> tuple:
    """Run every attack at every budget (in 1/255 of the pixel range) and score it: `success` is the share of
    images the CLIP now reads as their goal class, `transfer` the same on a second CLIP (its own class
    embeddings). Returns the table and, for the attack `keep` at the largest budget, its adversarial pixels.
    The budgets of an attack run together (`pgd_many`) in passes of at most `batch` images."""
    x = pixels(images)
    rows, kept = [], None
    per_call = max(1, batch // max(1, len(x)))  # budgets that share one pass (memory grows with them)
    for key, loss in tqdm(attacks.items(), desc="attacks", mininterval=2):
        advs = [a for i in range(0, len(budgets), per_call)
                for a in pgd_many(clip, x, [(loss, b / 255) for b in budgets[i:i + per_call]], steps)]
        for b, adv in zip(budgets, advs):
            row = dict(zip(("labelling", "set", "kind"), key), budget=b,
                       success=float((predict(clip, adv, classes) == goal).mean()))
            if second is not None:
                row["transfer"] = float((predict(second[0], adv, second[1]) == goal).mean())
            rows.append(row)
            if key == keep and b == max(budgets):
                kept = adv
    return pd.DataFrame(rows), kept


def summarise(table: pd.DataFrame, value: str = "success") -> pd.DataFrame:
    """`value` (success or transfer) per (labelling, attack, kind, budget) over seeds, in the book's layout
    (`stats.intervals`: quantity, value, low, high); the matched random sets of a class are pooled into one
    attack, 'random, <class>-matched'."""
    from mdsgap import stats

    t = table.assign(attack=table["set"].str.replace(r" #\d+$", "", regex=True))
    return stats.intervals(t, ["labelling", "attack", "kind", "budget"], [value])


def against_random(table: pd.DataFrame, overlaps: dict, value: str = "success") -> pd.DataFrame:
    """Each class's attack against its matched random sets, per labelling and budget (`attack_table` rows of
    several seeds; `overlaps` {(seed, labelling, class): overlap} from `objectives`): `control.verdicts` of the
    class's `value` beside its random sets' (per seed the mid-rank p of the class's deviation, shrunk for the
    sets' overlap as `control.compare` does; combined over seeds), with readout = the budget."""
    from mdsgap.edit import control

    t = table.assign(attack=table["set"].str.replace(r" #\d+$", "", regex=True))
    rows = []
    for (s, name, b), d in t[t.kind != "reference"].groupby(["seed", "labelling", "budget"], sort=False):
        for _, c in d[d.kind == "class"].iterrows():
            rand = d[d.attack == f"random, {c.set}-matched"][value].to_numpy(float)
            if len(rand):
                p = control.shrunk_p(c[value], rand.mean(), rand - rand.mean(), overlaps[(s, name, c.set)])
                rows.append({"seed": s, "labelling": name, "class": c.set, "readout": b, "size": np.nan,
                             "change": c[value], "random mean": rand.mean(), "n random": len(rand),
                             "p above": p, "matched": np.nan})
    return control.verdicts(pd.DataFrame(rows), by=("labelling", "class", "readout"))


def cheapest(summary: pd.DataFrame, verdicts: pd.DataFrame, labelling: str) -> dict:
    """The class of one labelling with the highest mean value over budgets (`summarise`), its matched random
    sets' mean, the whole-embedding reference's, and the share of budgets at which the class's verdict
    (`against_random`) is 'above' its random sets."""
    d = summary[summary.labelling == labelling]
    per = d[d.kind == "class"].groupby("attack").value.mean()
    if per.empty:
        raise ValueError(f"Labelling {labelling!r} has no class to attack through.")
    best = per.idxmax()
    rand = d[d.attack == f"random, {best}-matched"]
    ref = summary[summary.kind == "reference"].value.mean()
    v = verdicts[(verdicts.labelling == labelling) & (verdicts["class"] == best)]
    return {"class": best, "value": float(per.max()), "random": float(rand.value.mean()) if len(rand) else np.nan,
            "reference": float(ref), "budgets above random": float((v.verdict == "above").mean())
            if len(v) else float("nan")}
