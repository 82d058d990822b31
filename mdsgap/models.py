"""CLIP models through open_clip: any registered name with a pretrained tag or a local checkpoint.

The small configs the book trains live as JSON in `model_configs/` and are registered with open_clip
at import, so `open_clip.create_model_and_transforms("mdsgap-small", pretrained=<file>)` works too.
A `Clip` bundles a model with its preprocessing and tokenizer and encodes batches without gradients.
"""
from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
open_clip.add_model_config(CONFIG_DIR)

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"


def list_models() -> list[str]:
    """Every architecture name open_clip knows, the book's small configs included."""
    return open_clip.list_models()


def get_model_config(name: str) -> dict:
    """The architecture config of a registered name, with a helpful error for unknown names."""
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        close = difflib.get_close_matches(name, list_models(), n=5, cutoff=0.4)
        hint = f" Close matches: {close}." if close else ""
        raise ValueError(f"Unknown model name {name!r}.{hint} See mdsgap.models.list_models() for all "
                         f"{len(list_models())} names, or pass 'local-dir:PATH' for a saved checkpoint folder.")
    return cfg


def _resolve_pretrained(name: str, pretrained: str) -> str | None:
    """'' means random initialisation; otherwise a known tag or an existing file."""
    if not pretrained:
        return None
    if os.path.isdir(pretrained):
        found = [p for p in (Path(pretrained) / WEIGHTS_FILE,) if p.is_file()]
        if not found:
            raise FileNotFoundError(f"Checkpoint folder {pretrained!r} has no {WEIGHTS_FILE}.")
        return str(found[0])
    if os.path.isfile(pretrained):
        return pretrained
    tags = open_clip.list_pretrained_tags_by_model(name)
    if pretrained in tags:
        return pretrained
    looks_like_path = os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))
    if looks_like_path:
        raise FileNotFoundError(f"Checkpoint file {pretrained!r} does not exist. Check the path, or pass '' "
                                f"for random initialisation.")
    raise ValueError(f"{pretrained!r} is neither a checkpoint file nor a pretrained tag of {name!r}. "
                     f"Known tags: {tags or 'none'}; or pass '' for random initialisation.")


@dataclass
class Clip:
    """A CLIP model with its image preprocessing and tokenizer; encodes without gradients."""

    model: torch.nn.Module
    preprocess: object
    tokenizer: object
    name: str
    pretrained: str = ""
    identity: dict = field(default_factory=dict)
    """What determines this model's outputs; used as its cache key."""

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return size[0] if isinstance(size, (tuple, list)) else int(size)

    def image_tensor(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (n, H, W, 3) arrays to the model's normalised input, resized where sizes differ."""
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic", align_corners=False,
                              antialias=True).clamp(0, 1)
        cfg = self.model.visual.preprocess_cfg
        mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
        return (x - mean) / std

    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode_images(self, images) -> torch.Tensor:
        """Image embeddings (not normalised) of a uint8 array batch or a preprocessed tensor batch."""
        x = images if isinstance(images, torch.Tensor) else self.image_tensor(images)
        self.model.eval()
        return self.model.encode_image(x.to(self.device())).float().cpu()

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Text embeddings (not normalised) of a list of captions."""
        self.model.eval()
        return self.model.encode_text(self.tokenizer(texts).to(self.device())).float().cpu()


def resolve_device(device: str = "auto") -> str:
    """'auto' picks CUDA when a GPU is visible, else the CPU; other values pass through to torch."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _file_identity(path: str) -> dict:
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def create_clip(name: str, pretrained: str = "", seed: int = 0, device: str = "auto") -> Clip:
    """Build a CLIP from an open_clip name (or 'local-dir:PATH') and a tag, a file, or '' for random init.

    Random initialisation is seeded, so the "random CLIP" baselines are reproducible.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"Model name must be a non-empty string, got {name!r}.")
    if not isinstance(pretrained, str):
        raise TypeError(f"pretrained must be a string (a tag, a file path, or ''), got {pretrained!r}.")
    if name.startswith("local-dir:"):
        folder = name[len("local-dir:"):]
        if not (Path(folder) / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{folder!r} is not a checkpoint folder: {CONFIG_FILE} is missing.")
        identity = {"name": name, **_file_identity(str(Path(folder) / WEIGHTS_FILE))}
        source = None
    else:
        get_model_config(name)
        source = _resolve_pretrained(name, pretrained)
        identity = {"name": name, "pretrained": pretrained, "seed": seed}
        if source and os.path.isfile(source):
            identity.update(_file_identity(source))
    torch.manual_seed(seed)
    try:
        with _quiet_random_init(source is None and not name.startswith("local-dir:")):
            model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=source,
                                                                         device=resolve_device(device))
    except RuntimeError as e:
        if "download" in str(e).lower():
            raise RuntimeError(f"Could not fetch weights {pretrained!r} for {name!r} (no network?). Download them on a "
                               f"machine with access and pass the file path as pretrained.") from e
        raise
    tokenizer = open_clip.get_tokenizer(name)
    return Clip(model, preprocess, tokenizer, name, pretrained, identity)


@contextlib.contextmanager
def _quiet_random_init(quiet: bool):
    """open_clip logs a warning for every randomly initialised model; here random init is on purpose."""
    logger = logging.getLogger()
    level = logger.level
    if quiet:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def save_checkpoint(model: torch.nn.Module, model_cfg: dict, folder: str | Path, extra: dict | None = None) -> Path:
    """Write `open_clip_config.json` and `open_clip_model.safetensors` into folder, atomically.

    The folder loads with `open_clip.create_model_and_transforms("local-dir:<folder>")`, and the weights
    file with `create_model_and_transforms(<name>, pretrained=<file>)` for a registered name.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    try:
        config = {"model_cfg": model_cfg, "preprocess_cfg": dict(model.visual.preprocess_cfg), **(extra or {})}
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILE))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
