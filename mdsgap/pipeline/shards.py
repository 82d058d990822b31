"""Embeddings on disk: float16 shards with a manifest, the files the `mdsgap` pipeline chains through.

A run folder holds `embeddings/emb-NNNNN.safetensors` (tensors `image` and `text`, (n, d) float16, and the
pairs' keys in the file's metadata), one `.json` record per finished shard (its size, checksum, source), and
`manifest.json` (model, dataset, counts, checksums) once every shard is done. Every file is written to a
temporary name and renamed, so a killed run leaves only whole shards: `embed` resumes by skipping them.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import torch

FORMAT = 1
MANIFEST = "manifest.json"
SUBDIR = "embeddings"


class ManifestError(ValueError):
    """A run folder whose files do not match what its manifest promises."""


@dataclass(frozen=True)
class ShardInfo:
    """One finished shard: file name, pairs, sha256 of the file, and the input it came from."""

    name: str
    n: int
    sha256: str
    source: str


def shard_name(index: int) -> str:
    return f"emb-{index:05d}.safetensors"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_atomic_bytes(path: Path, data: bytes) -> None:
    """Write through a temporary name in the same folder, then rename: readers see all or nothing."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(path: Path, obj) -> None:
    write_atomic_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def write_shard(run_dir: Path, index: int, image: torch.Tensor, text: torch.Tensor, keys: list[str],
                source: str) -> ShardInfo:
    """Store one shard of paired embeddings as float16 (atomically) and its record; returns the record."""
    from safetensors.torch import save

    if image.shape != text.shape or image.ndim != 2 or len(keys) != len(image):
        raise ValueError(f"a shard needs image and text embeddings of one (n, d) shape and n keys; got "
                         f"{tuple(image.shape)}, {tuple(text.shape)} and {len(keys)} keys.")
    folder = Path(run_dir) / SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    name = shard_name(index)
    data = _canonical(save({"image": image.detach().to("cpu", torch.float16).contiguous(),
                            "text": text.detach().to("cpu", torch.float16).contiguous()},
                           metadata={"keys": json.dumps(list(keys)), "source": source}))
    write_atomic_bytes(folder / name, data)
    info = ShardInfo(name, len(keys), hashlib.sha256(data).hexdigest(), source)
    write_json(folder / f"{name}.json", asdict(info))
    return info


def _canonical(data: bytes) -> bytes:
    """safetensors bytes with the JSON header's keys sorted: safetensors writes its metadata in hash order,
    which varies between processes, and equal embeddings must give equal checksums."""
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + data[8 + n:]


def finished(run_dir: Path, index: int) -> ShardInfo | None:
    """The record of shard `index` if it was finished (its file and record both exist), else None."""
    folder = Path(run_dir) / SUBDIR
    record = folder / f"{shard_name(index)}.json"
    if not (record.is_file() and (folder / shard_name(index)).is_file()):
        return None
    return ShardInfo(**json.loads(record.read_text()))


def read_shard(path: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(image, text, keys) of one shard file, embeddings as float32."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        keys = json.loads(f.metadata()["keys"])
        return f.get_tensor("image").float(), f.get_tensor("text").float(), keys


def write_manifest(run_dir: Path, model: dict, dataset: dict, shards: list[ShardInfo]) -> dict:
    """The manifest of a finished `embed`: what made the embeddings and every shard's checksum."""
    dims = None
    if shards:
        dims = list(read_shard(Path(run_dir) / SUBDIR / shards[0].name)[0].shape[1:])
    manifest = {"format": FORMAT, "model": model, "dataset": dataset, "dim": dims[0] if dims else None,
                "n_pairs": sum(s.n for s in shards), "shards": [asdict(s) for s in shards]}
    write_json(Path(run_dir) / MANIFEST, manifest)
    return manifest


def describe_model(model: dict, other: dict | None = None) -> str:
    """A model identity in words (name, tag, seed, file), saying so when it differs from `other` only in its
    architecture's config (a changed JSON, or an identity written before mdsgap 0.7.1 recorded it)."""
    words = " ".join(f"{k}={v!r}" for k, v in model.items() if k in ("name", "pretrained", "seed", "path"))
    bare = lambda m: {k: v for k, v in m.items() if k != "architecture"}
    if other is not None and model != other and bare(model) == bare(other):
        words += " with another architecture config (or recorded before mdsgap 0.7.1)"
    return words


def load_manifest(run_dir: Path, model: dict | None = None, verify: bool = True) -> dict:
    """A run folder's manifest, checked: every shard present with its checksum, and (when `model` is given)
    made by that model. Errors name the problem and the fix."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if not path.is_file():
        raise ManifestError(f"{run_dir} has no {MANIFEST}: it is not a finished `mdsgap embed` run. Run "
                            f"`mdsgap embed ... --out {run_dir}` (it resumes where it stopped).")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ManifestError(f"{path} has format {manifest.get('format')!r}; this mdsgap reads format {FORMAT}. "
                            "Embed the data again with this version.")
    if model is not None and manifest["model"] != model:
        raise ManifestError(f"{run_dir} holds embeddings of {describe_model(manifest['model'], model)}, not of "
                            f"{describe_model(model)}: point at the run folder of this model, or embed the data "
                            "with it.")
    if verify:
        for s in manifest["shards"]:
            file = run_dir / SUBDIR / s["name"]
            if not file.is_file():
                raise ManifestError(f"shard {file} is missing: rerun `mdsgap embed` on {run_dir} to remake it.")
            if sha256_file(file) != s["sha256"]:
                raise ManifestError(f"shard {file} does not match its checksum in {path} (changed or corrupted "
                                    "after embedding): delete it and rerun `mdsgap embed` to remake it.")
    return manifest


def iter_shards(run_dir: Path, rank: int = 0, world_size: int = 1, verify: bool = True
                ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, list[str]]]:
    """(shard index, image, text, keys) of the shards of a finished run that belong to `rank` (every
    world_size-th shard), in order."""
    manifest = load_manifest(run_dir, verify=verify)
    for i, s in enumerate(manifest["shards"]):
        if i % world_size == rank:
            yield (i, *read_shard(Path(run_dir) / SUBDIR / s["name"]))
