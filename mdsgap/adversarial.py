"""Cross-modal adversarial examples: pixel-space attacks whose objective lives in one class of latents.

Yan et al. (2026) generate adversarial images by steering the features of one modality class toward those
of a target caption. Here the attack is projected gradient descent (PGD, Madry et al. 2018) under an
L-infinity budget on pixels in [0, 1]; its objective is the squared distance between the image's latents of
one set and the target caption's, where a latent's value is its ReLU pre-activation (a TopK code has zero
gradient for every latent outside the image's top k, which would leave a text-side class unreachable). The
whole-embedding attack, which pulls the image embedding toward the target caption by cosine, is the
reference; random latent sets of the same size are the control.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mdsgap.models import Clip
from mdsgap.sae import SparseAutoencoder


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
    if eps < 0 or steps < 1:
        raise ValueError(f"eps must be >= 0 and steps >= 1, got eps={eps}, steps={steps}.")
    step_size = 2.5 * eps / steps if step_size is None else step_size
    model = clip.model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x0 = images.to(clip.device())
    x = x0.clone()
    for _ in range(steps if eps > 0 else 0):
        x.requires_grad_(True)
        value = loss(model.encode_image(to_input(clip, x))).sum()
        grad, = torch.autograd.grad(value, x)
        with torch.no_grad():
            x = x - step_size * grad.sign()
            x = (x0 + (x - x0).clamp(-eps, eps)).clamp(0, 1)
    return x.detach().cpu()


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
