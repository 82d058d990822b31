"""The real path of the generation chapter: Stable unCLIP draws from an edited CLIP image embedding.

`StableUnCLIPImg2ImgPipeline` (diffusers) takes `image_embeds=` in place of an image, so an embedding edited
by class removal (`editing.without_latents`, with an autoencoder trained on the pipeline's own image
encoder) goes straight in. Nothing is downloaded: the pipeline is a local folder saved by
`save_pretrained` (for example a Stable unCLIP checkpoint the reader has fetched).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

MIN_STEPS = 20
"""The fewest sampling steps the book asks of a real Stable unCLIP (its own small decoder needs fewer)."""


def load_pipeline(folder: str | Path, device: str = "cpu"):
    """A Stable unCLIP img2img pipeline from a local folder, with an error that says what the folder lacks."""
    from diffusers import StableUnCLIPImg2ImgPipeline

    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"{folder} is not a diffusers pipeline folder (no model_index.json). Save one "
                                f"with StableUnCLIPImg2ImgPipeline.save_pretrained(folder), or point to a "
                                f"downloaded Stable unCLIP checkpoint.")
    pipe = StableUnCLIPImg2ImgPipeline.from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


@torch.no_grad()
def image_embeds(pipe, images) -> torch.Tensor:
    """The pipeline's own CLIP image embeddings (n, d) of PIL images or uint8 arrays (n, H, W, 3)."""
    if isinstance(images, np.ndarray):
        images = list(images)
    pixels = pipe.feature_extractor(images=images, return_tensors="pt").pixel_values
    return pipe.image_encoder(pixels.to(pipe.device)).image_embeds.float().cpu()


def check_width(pipe, emb: torch.Tensor) -> None:
    """Refuse embeddings that do not match the pipeline's image encoder (an autoencoder trained on another
    model's embeddings, for instance)."""
    width = pipe.image_encoder.config.projection_dim
    if emb.ndim != 2 or emb.shape[1] != width:
        raise ValueError(f"image_embeds must be (n, {width}) for this pipeline's image encoder, got "
                         f"{tuple(emb.shape)}. Train the autoencoder on embeddings from `image_embeds(pipe, ...)`.")


@torch.no_grad()
def draw(pipe, emb: torch.Tensor, steps: int = 20, guidance: float = 7.5, size: int | None = None,
         seed: int = 0) -> list:
    """One PIL image per embedding, the prompt left empty so the embedding alone decides; deterministic
    for a seed."""
    check_width(pipe, emb)
    size = size or pipe.unet.config.sample_size * pipe.vae_scale_factor
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = pipe(image_embeds=emb.to(pipe.device, pipe.unet.dtype), prompt=[""] * len(emb),
               num_inference_steps=steps, guidance_scale=guidance, height=size, width=size, generator=g)
    return out.images


def rescale(edited: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Edited embeddings (the autoencoder works on unit vectors) back at the norms of the originals, which
    the pipeline's image normaliser expects."""
    return torch.nn.functional.normalize(edited.float(), dim=-1) * original.float().norm(dim=-1, keepdim=True)


def draw_edits(pipe, sae, original: torch.Tensor, labels, classes=("ImgD", "TxtD", "CMD"),
               steps: int = 20, seed: int = 0) -> tuple[list, list[str]]:
    """The real path's grid: the originals through the autoencoder with nothing removed, then with each
    class's latents removed (`editing.class_versions`), each drawn by the pipeline with the same noise;
    returns the images and a caption per image."""
    from mdsgap.edit import editing

    images, names = [], []
    for c, _, edited in editing.class_versions(sae, original, labels, classes):
        images += draw(pipe, rescale(edited, original), steps, seed=seed)
        names += ["nothing removed" if c == "none" else f"{c} removed"] * len(original)
    return images, names
