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


class ModelError(ValueError):
    """A model name, tag or checkpoint that cannot be used as given; the message names the fix."""


def list_models() -> list[str]:
    """Every architecture name open_clip knows, the book's small configs included."""
    return open_clip.list_models()


def resolve_name(name: str) -> str:
    """The registered spelling of an architecture name, case aside (`vit-b-32` -> `ViT-B-32`); an unknown name
    is an error listing the closest registered ones."""
    names = list_models()
    if name in names:
        return name
    by_lower = {n.lower(): n for n in names}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    close = [by_lower[n] for n in difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.4)]
    hint = f" Close matches: {close}." if close else ""
    raise ModelError(f"Unknown model name {name!r}.{hint} See mdsgap.clip.models.list_models() for all "
                     f"{len(names)} names, or pass 'local-dir:PATH' for a saved checkpoint folder.")


def get_model_config(name: str) -> dict:
    """The architecture config of a registered name (any case), with a helpful error for unknown names."""
    return open_clip.get_model_config(resolve_name(name))


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
    raise ModelError(f"{pretrained!r} is neither a checkpoint file nor a pretrained tag of {name!r}. "
                     f"Known tags: {tags or 'none'}; or pass '' for random initialisation.")


class Remembered:
    """An open_clip tokenizer that tokenises each distinct text once per process: the book tokenises the same
    captions and prompt ensembles for model after model, and open_clip's BPE (with ftfy) costs more than a
    small model's forward pass. Texts are keyed with the tokenizer's kind and context length."""

    _rows: dict = {}

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.kind = (type(tokenizer).__name__, getattr(tokenizer, "context_length", None))
        self.remembers = isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer)  # one vocabulary: CLIP's BPE

    def __call__(self, texts, context_length: int | None = None) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not self.remembers or context_length is not None or len(self._rows) > 200_000:
            return self.tokenizer(texts, context_length) if context_length else self.tokenizer(texts)
        missing = list(dict.fromkeys(t for t in texts if (self.kind, t) not in self._rows))
        if missing:
            for t, row in zip(missing, self.tokenizer(missing)):
                self._rows[(self.kind, t)] = row
        return torch.stack([self._rows[(self.kind, t)] for t in texts]) if texts else self.tokenizer(texts)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


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
        name = resolve_name(name)
        source = _resolve_pretrained(name, pretrained)
        identity = {"name": name, "pretrained": pretrained, "seed": seed,
                    "architecture": get_model_config(name)}  # a changed JSON is another model
        if source and os.path.isfile(source):
            identity.update(_file_identity(source))
    torch.manual_seed(seed)
    try:
        with _quiet_random_init(source is None and not name.startswith("local-dir:")):
            model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=source,
                                                                         device=resolve_device(device))
    except Exception as e:  # noqa: BLE001 (re-raised unless a mismatched checkpoint explains it)
        if isinstance(e, RuntimeError) and "download" in str(e).lower():
            raise RuntimeError(f"Could not fetch weights {pretrained!r} for {name!r} (no network?). Download them on a "
                               f"machine with access and pass the file path as pretrained.") from e
        problem = checkpoint_mismatch(name, source) if source and os.path.isfile(source) else None
        if problem:
            raise ModelError(problem) from e
        raise
    tokenizer = Remembered(open_clip.get_tokenizer(name))
    return Clip(model, preprocess, tokenizer, name, pretrained, identity)


def checkpoint_shapes(path: str) -> dict[str, tuple]:
    """Tensor name -> shape of a checkpoint file, read without loading the weights where the format allows."""
    if str(path).endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    try:
        state = torch.load(path, map_location="meta", weights_only=True, mmap=True)
    except Exception:  # TorchScript archives and other formats: open_clip's own reader
        state = open_clip.factory.load_state_dict(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        return {}
    strip = 7 if state and next(iter(state)).startswith("module.") else 0
    return {k[strip:]: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}


_SCALARS = ("logit_scale", "logit_bias")  # open_clip reshapes or adds these when loading


def _arch_shapes(name: str) -> dict[str, tuple]:
    """Tensor name -> shape of an architecture's state dict, built on the meta device (no memory, no init)."""
    with _quiet_random_init(True), torch.device("meta"):
        model = open_clip.create_model(name, pretrained=None, device="meta", pretrained_text=False)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _fits(ckpt: dict, arch: dict) -> bool:
    if "positional_embedding" in ckpt and "positional_embedding" not in arch:  # open_clip's old text-tower names
        ckpt = open_clip.model.convert_to_custom_text_state_dict(ckpt)
    if set(ckpt) - set(_SCALARS) != set(arch) - set(_SCALARS):
        return False
    return all(ckpt[k] == arch[k] for k in ckpt if k not in _SCALARS)


def _blocks(shapes: dict, prefix: str) -> int:
    return len({k[len(prefix):].split(".")[0] for k in shapes if k.startswith(prefix)})


def _signature(shapes: dict) -> dict:
    """What a checkpoint says about its config: tower kinds, depths and widths, patch, context, vocabulary."""
    sig = {}
    for key, name, axis in (("text_projection", "embed_dim", 1), ("visual.proj", "embed_dim", 1),
                            ("token_embedding.weight", "vocab_size", 0), ("token_embedding.weight", "text_width", 1),
                            ("positional_embedding", "context_length", 0)):
        if key in shapes and len(shapes[key]) > axis:
            sig.setdefault(name, shapes[key][axis])
    if any(k.startswith("visual.trunk.") for k in shapes):
        sig["vision"] = "timm"
    elif any(k.startswith("visual.layer1.") for k in shapes):
        sig.update(vision="resnet", vision_layers=tuple(_blocks(shapes, f"visual.layer{i}.") for i in range(1, 5)))
    elif "visual.conv1.weight" in shapes and len(shapes["visual.conv1.weight"]) == 4:
        width, _, _, patch = shapes["visual.conv1.weight"]
        sig.update(vision="vit", vision_layers=_blocks(shapes, "visual.transformer.resblocks."), vision_width=width,
                   patch_size=patch)
    if _blocks(shapes, "transformer.resblocks."):
        sig["text_layers"] = _blocks(shapes, "transformer.resblocks.")
    return sig


def _config_signature(cfg: dict) -> dict:
    v, t = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    sig = {"embed_dim": cfg.get("embed_dim")}
    if v.get("timm_model_name"):
        sig["vision"] = "timm"
    elif isinstance(v.get("layers"), (list, tuple)):
        sig.update(vision="resnet", vision_layers=tuple(v["layers"]))
    else:
        sig.update(vision="vit", vision_layers=v.get("layers", 12), vision_width=v.get("width", 768),
                   patch_size=v.get("patch_size", 16))
    if not t.get("hf_model_name"):
        sig.update(vocab_size=t.get("vocab_size", 49408), text_width=t.get("width", 512),
                   context_length=t.get("context_length", 77), text_layers=t.get("layers", 12))
    return sig


def checkpoint_mismatch(name: str, path: str) -> str | None:
    """Why the checkpoint at `path` does not load as architecture `name`, naming the registered architecture
    whose state-dict keys and shapes it has, if any; None when it fits `name` (the failure lies elsewhere).
    Candidates are the configs whose widths agree with the checkpoint's, built on the meta device."""
    try:
        ckpt, arch = checkpoint_shapes(path), _arch_shapes(name)
    except Exception:  # unreadable file, or an architecture that needs the network: keep open_clip's error
        return None
    if not ckpt or _fits(ckpt, arch):
        return None
    sig = _signature(ckpt)
    candidates = []
    for other in list_models():
        cfg = open_clip.get_model_config(other) or {}
        if other == name or cfg.get("text_cfg", {}).get("hf_model_name"):  # HF text towers need the network
            continue
        csig = _config_signature(cfg)
        if all(csig.get(k, v) == v for k, v in sig.items()):
            candidates.append(other)
    matches = []
    for other in candidates:
        try:
            if _fits(ckpt, _arch_shapes(other)):
                matches.append(other)
        except Exception:  # a config this environment cannot build (a missing timm model, say)
            continue
    if matches:
        quick = "quickgelu" in name  # identical shapes: prefer the variant of the name's kind, then the plainest
        best = min(matches, key=lambda m: (("quickgelu" in m) != quick, len(m), m))
        also = [m for m in matches if m != best][:3]
        same = f" (as do {also})" if also else ""
        return (f"this checkpoint has the keys of {best}{same}, not {name}: pass --model {best} "
                f"(model={best!r} in Python). Checkpoint: {path}")
    differ = [k for k in sorted(set(ckpt) | set(arch)) if k not in _SCALARS and ckpt.get(k) != arch.get(k)]
    shown = "; ".join(f"{k}: checkpoint {ckpt.get(k, 'missing')}, {name} {arch.get(k, 'missing')}"
                      for k in differ[:3])
    return (f"this checkpoint ({path}) does not match {name} ({len(differ)} tensors differ, e.g. {shown}) nor any "
            f"other registered architecture: pass the --model it was trained with, or 'local-dir:FOLDER' for a "
            f"folder holding the checkpoint and its {CONFIG_FILE}.")


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
