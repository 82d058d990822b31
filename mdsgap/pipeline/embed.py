"""Embed a dataset with an open_clip model: a CSV/TSV or webdataset shards -> float16 embedding shards.

Each input shard (a CSV's --shard-size rows, or one tar) becomes one embedding shard of RUN/embeddings, with
the model's own preprocessing; images are decoded by --workers DataLoader processes. A rerun skips finished
shards (resume after a kill), and under torchrun rank r takes every world_size-th input shard. RUN/manifest.json
(model, dataset, counts, checksums) is written once every shard is done.

    mdsgap embed --model ViT-B-32 --pretrained openai --data 'shards/{00000..00099}.tar' --out run/
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from mdsgap.clip import models
from mdsgap.pipeline import distributed, shards, sources
from mdsgap.pipeline import PipelineError

SPEC = "embed.json"
"""What the run folder's embeddings are of (model and dataset), written before the first shard."""
PAUSE_ENV = "MDSGAP_EMBED_PAUSE"
"""Seconds to sleep after each batch: a hook for tests that kill a run mid-way."""


def _sep(text: str) -> str:
    sep = {"\\t": "\t", "tab": "\t", "comma": ","}.get(text, text)
    if len(sep) != 1:
        raise argparse.ArgumentTypeError(f"a separator is one character ('\\t' for a tab), got {text!r}")
    return sep


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="open_clip architecture (any case), e.g. ViT-B-32, or "
                   "local-dir:FOLDER for a saved checkpoint folder")
    p.add_argument("--pretrained", default="", help="a pretrained tag of the model (e.g. openai), a checkpoint "
                   "file, or '' (the default) for a seeded random initialisation")
    p.add_argument("--seed", type=int, default=0, help="seed of a random initialisation (default 0)")
    p.add_argument("--data", required=True, help="a CSV/TSV of image paths and captions, or webdataset tar "
                   "shards: a path or a brace pattern such as 'shards/{00000..00099}.tar'")
    p.add_argument("--out", required=True, type=Path, help="run folder for the embeddings and the manifest")
    p.add_argument("--sep", type=_sep, default=None, help="CSV separator (default: a tab for .tsv files or a "
                   "tab-separated header, else a comma); '\\t' for a tab")
    p.add_argument("--img-key", default="filepath", help="CSV column of the image paths (default filepath)")
    p.add_argument("--caption-key", default="title", help="CSV column of the captions (default title)")
    p.add_argument("--batch-size", type=_positive, default=256, help="pairs per forward pass (default 256)")
    p.add_argument("--shard-size", type=_positive, default=10_000,
                   help="CSV rows per shard, the unit of resuming and of splitting over ranks (default 10000)")
    p.add_argument("--device", default="auto", help="'auto' (the rank's GPU, else the CPU), 'cpu', 'cuda', ...")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="image-decoding processes per rank (default min(2, CPUs); 0 decodes in the main one)")
    p.add_argument("--skip-bad", action="store_true", help="leave out unreadable images and samples without a "
                   "caption, and count them, instead of stopping at the first")


class _Pairs(Dataset):
    """A shard's samples decoded, preprocessed and tokenised in the DataLoader's workers."""

    def __init__(self, samples: list[sources.Sample], clip: models.Clip):
        self.samples, self.preprocess, self.tokenizer = samples, clip.preprocess, clip.tokenizer

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        s = self.samples[i]
        image, problem = (None, s.problem) if s.problem else sources.read_image(s)
        if problem:
            return i, None, None, problem
        return i, self.preprocess(image), self.tokenizer([s.caption])[0], None


def _lower_priority(_worker: int) -> None:
    """Decoding workers yield the CPU to the model's threads: on a few cores, a model thread descheduled for a
    worker stalls every parallel op (forward passes measured tens of times slower on 2 cores)."""
    os.nice(10)


def _collate(items):
    good = [it for it in items if it[3] is None]
    images = torch.stack([it[1] for it in good]) if good else None
    tokens = torch.stack([it[2] for it in good]) if good else None
    return [it[0] for it in good], images, tokens, [(it[0], it[3]) for it in items if it[3] is not None]


@torch.no_grad()
def embed_shard(clip: models.Clip, shard: sources.InputShard, run: Path, batch_size: int, workers: int,
                progress: bool = False) -> shards.ShardInfo:
    """Embed one input shard and write it (atomically) as embedding shard `shard.index`."""
    samples = shard.samples()
    loader = DataLoader(_Pairs(samples, clip), batch_size=batch_size, num_workers=workers, collate_fn=_collate,
                        pin_memory=clip.device().type == "cuda", worker_init_fn=_lower_priority)
    pause = float(os.environ.get(PAUSE_ENV, "0") or 0)
    model, device = clip.model.eval(), clip.device()
    keys, image, text = [], [], []
    for idx, images, tokens, problems in tqdm(loader, desc=Path(shard.source).name, leave=False,
                                              disable=not progress, mininterval=1):
        for i, problem in problems:
            shard.reject(samples[i], problem)
        if idx:
            image.append(model.encode_image(images.to(device, non_blocking=True)).float().cpu())
            text.append(model.encode_text(tokens.to(device, non_blocking=True)).float().cpu())
            keys += [samples[i].key for i in idx]
        if pause:
            time.sleep(pause)
    if not keys:  # every sample skipped: an empty shard of the right width
        image = text = [torch.empty(0, clip.encode_texts(["a"]).shape[1])]
    if shard.skipped:
        (run / shards.SUBDIR).mkdir(parents=True, exist_ok=True)
        shards.write_json(run / shards.SUBDIR / _skipped_name(shard.index),
                          [{"where": w, "problem": p} for w, p in shard.skipped])
    return shards.write_shard(run, shard.index, torch.cat(image), torch.cat(text), keys, shard.source)


def _skipped_name(index: int) -> str:
    return shards.shard_name(index).replace(".safetensors", ".skipped.json")


def _n_skipped(run: Path, index: int) -> int:
    path = run / shards.SUBDIR / _skipped_name(index)
    return len(json.loads(path.read_text())) if path.is_file() else 0


def prepare_run(run: Path, model: dict, dataset: dict, n_inputs: int) -> str | None:
    """Rank 0's check of the run folder before any work: the problem (another model's or dataset's embeddings
    there) or None, after recording what the folder holds and removing what a killed run left half-written."""
    for path, what in ((run / shards.MANIFEST, "embeddings"), (run / SPEC, "unfinished embeddings")):
        if not path.is_file():
            continue
        old = json.loads(path.read_text())
        if old["model"] != model:
            return (f"{run} holds {what} of {shards.describe_model(old['model'], model)}, not of "
                    f"{shards.describe_model(model)}: choose another "
                    f"--out (or delete {run} to start over).")
        changed = sorted(k for k in dataset if old["dataset"].get(k) != dataset[k])
        if changed:
            return (f"{run} holds {what} of other data or options (differing: {changed}): rerun with the same "
                    f"--data and options, or choose another --out.")
    run.mkdir(parents=True, exist_ok=True)
    for tmp in [*run.glob(".*.tmp-*"), *(run / shards.SUBDIR).glob(".*.tmp-*")]:
        tmp.unlink(missing_ok=True)
    shards.write_json(run / SPEC, {"model": model, "dataset": dataset})
    if not all(shards.finished(run, i) for i in range(n_inputs)):
        (run / shards.MANIFEST).unlink(missing_ok=True)  # the folder is not finished until every shard is
    return None


def _load_model(args, device: str) -> models.Clip:
    try:
        return models.create_clip(args.model, args.pretrained, seed=args.seed, device=device)
    except ValueError as e:  # unknown name or tag, a checkpoint of another architecture
        raise PipelineError(str(e)) from e
    except RuntimeError as e:
        if "Could not fetch" in str(e):
            raise PipelineError(str(e)) from e
        raise


def run(args) -> int:
    ctx = distributed.init(args.device)
    try:
        source = sources.open_source(args.data, args.sep, args.img_key, args.caption_key, args.shard_size,
                                     args.skip_bad)
        clip = _load_model(args, ctx.device)
        run_dir = Path(args.out)
        resumed = sum(bool(shards.finished(run_dir, s.index)) for s in source.shards) if ctx.main else 0
        problem = prepare_run(run_dir, clip.identity, source.identity(), len(source.shards)) if ctx.main else None
        problem = distributed.broadcast_object(ctx, problem)  # also: no rank starts before rank 0's check
        if problem:
            raise PipelineError(problem)
        mine = [s for s in source.shards if s.index % ctx.world_size == ctx.rank]
        todo = [s for s in mine if not shards.finished(run_dir, s.index)]
        with tqdm(total=len(mine), initial=len(mine) - len(todo), desc="shards", unit="shard",
                  disable=not ctx.main) as bar:
            for shard in todo:
                embed_shard(clip, shard, run_dir, args.batch_size, args.workers, progress=ctx.main)
                bar.update()
        distributed.barrier(ctx)
        if ctx.main:
            infos = [shards.finished(run_dir, s.index) for s in source.shards]
            if not all(infos):
                raise PipelineError(f"shards {[s.index for s, i in zip(source.shards, infos) if not i]} of "
                                    f"{run_dir} did not finish: rerun the command to embed them.")
            skipped = sum(_n_skipped(run_dir, s.index) for s in source.shards)
            manifest = shards.write_manifest(run_dir, clip.identity,
                                             {**source.identity(), "skipped": skipped}, infos)
            print(f"embedded {manifest['n_pairs']} pairs (dimension {manifest['dim']}, {skipped} skipped) in "
                  f"{len(infos)} shards ({resumed} finished before) -> {run_dir / shards.MANIFEST}")
        distributed.barrier(ctx)
        return 0
    finally:
        distributed.close(ctx)
