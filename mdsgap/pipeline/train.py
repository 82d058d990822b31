"""Train an SAE (any variant of `mdsgap.features.sae`) on a run's embedding shards, streamed, with checkpoints.

    mdsgap train-sae --run RUN --latents 4096 --k 32 [--variant topk] [--pairing none] [--steps 10000]
    torchrun --nproc_per_node=2 -m -- mdsgap.pipeline.cli train-sae --run RUN ...   (`--`: torchrun would take --run)

Writes RUN/sae/ (or RUN/<--out-name>/): config.json, checkpoint-<step>.pt every --checkpoint-every steps, then
final.pt, curve.csv and sae.json (config, FVU / L0 / dead fraction per modality). A killed run resumes from its last
checkpoint and ends with the weights an uninterrupted run would have. Under torchrun every rank trains on its slice
of each batch (DistributedDataParallel); rank 0 writes the files.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mdsgap import gap
from mdsgap.features import sae
from mdsgap.pipeline import distributed, shards
from mdsgap.pipeline import PipelineError

FORMAT = 1
ACTIVATIONS = {"topk": sae.TopK, "batchtopk": sae.BatchTopK, "relu": sae.ReLU, "sharedtopk": sae.SharedTopK}
PAIRINGS = {"none": None, "alignment": sae.Alignment, "isoenergy": sae.IsoEnergy}


def add_arguments(p) -> None:
    p.add_argument("--run", dest="run_dir", metavar="RUN", required=True, type=Path,
                   help="run folder written by `mdsgap embed`")
    p.add_argument("--variant", choices=list(ACTIVATIONS), default="topk", help="SAE activation (default topk)")
    p.add_argument("--pairing", choices=list(PAIRINGS), default="none",
                   help="pairing objective, trained on matched pairs (default none)")
    p.add_argument("--pairing-coef", type=float, default=None,
                   help="Alignment beta or IsoEnergy coef (default: mdsgap.features.sae's, 0.1 / 1.0)")
    p.add_argument("--latents", type=int, default=4096, help="number of latents (default 4096)")
    p.add_argument("--k", type=int, default=32, help="active latents per sample, TopK family (default 32)")
    p.add_argument("--l1", type=float, default=3e-3, help="L1 coefficient of the relu variant (default 3e-3)")
    p.add_argument("--steps", type=int, default=10_000, help="optimiser steps (default 10000)")
    p.add_argument("--batch-size", type=int, default=4096, help="embeddings per step, both modalities (default 4096)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and sample order (default 0)")
    p.add_argument("--checkpoint-every", type=int, default=1000, metavar="STEPS",
                   help="write a checkpoint every STEPS steps, 0 for none (default 1000)")
    p.add_argument("--out-name", default="sae", help="subfolder of RUN for this SAE (default sae)")
    p.add_argument("--device", default="auto", help="auto (a GPU per rank if any), cpu, cuda")


def config_from_args(args) -> sae.SAEConfig:
    """The SAEConfig the command line asks for (errors name the bad option)."""
    try:
        act = ACTIVATIONS[args.variant]
        act = act(l1=args.l1) if act is sae.ReLU else act(k=args.k)
        pairing = PAIRINGS[args.pairing]
        if pairing is not None:
            pairing = pairing() if args.pairing_coef is None else pairing(args.pairing_coef)
        cfg = sae.SAEConfig(n_latents=args.latents, activation=act, steps=args.steps, batch_size=args.batch_size,
                            lr=args.lr, seed=args.seed, pairing=pairing)
        sae._check_trainable(cfg)
    except ValueError as e:
        raise PipelineError(str(e)) from None
    if args.steps < 1 or args.latents < 1 or args.batch_size < 2 or args.lr <= 0:
        raise PipelineError("--steps and --latents must be positive, --batch-size at least 2 and --lr above 0.")
    return cfg


def config_to_dict(cfg: sae.SAEConfig) -> dict:
    """A JSON-ready SAEConfig: activation and pairing as {"type": name, field: value}."""
    out = dataclasses.asdict(cfg)
    out["activation"] = {"type": type(cfg.activation).__name__, **dataclasses.asdict(cfg.activation)}
    if cfg.pairing is not None:
        out["pairing"] = {"type": type(cfg.pairing).__name__, **dataclasses.asdict(cfg.pairing)}
    return out


def config_from_dict(d: dict) -> sae.SAEConfig:
    d = dict(d)
    act = dict(d.pop("activation"))
    d["activation"] = getattr(sae, act.pop("type"))(**act)
    if d.get("pairing") is not None:
        p = dict(d["pairing"])
        d["pairing"] = getattr(sae, p.pop("type"))(**p)
    return sae.SAEConfig(**d)


def embeddings_digest(manifest: dict) -> str:
    """Identity of a run's embeddings: a hash of its shards' names and checksums."""
    text = json.dumps([(s["name"], s["sha256"]) for s in manifest["shards"]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare(e: torch.Tensor) -> torch.Tensor:
    """Unit-normalised float32 rows: what every SAE of the book sees (`features.sae_features`)."""
    return gap.normalize(e).float()


class Stream:
    """A run's training items in an order fixed by (seed, position): each epoch visits the shards in a shuffled
    order and each shard's items in a shuffled order, both drawn from (seed, epoch); step s takes positions
    [s B, (s + 1) B). A resumed run therefore sees the batches an uninterrupted one would, and only one shard is in
    memory at a time. Items are embeddings (both modalities) or, paired, (image, caption) pairs of shape (2, d)."""

    def __init__(self, run: Path, manifest: dict, seed: int, paired: bool):
        self.run, self.seed, self.paired = Path(run), seed, paired
        self.names = [s["name"] for s in manifest["shards"]]
        self.sizes = np.array([s["n"] * (1 if paired else 2) for s in manifest["shards"]], dtype=np.int64)
        self.total = int(self.sizes.sum())
        self._cache: tuple[int, torch.Tensor] | None = None

    def _load(self, shard: int) -> torch.Tensor:
        if self._cache is None or self._cache[0] != shard:
            img, txt, _ = shards.read_shard(self.run / shards.SUBDIR / self.names[shard])
            img, txt = prepare(img), prepare(txt)
            self._cache = shard, (torch.stack([img, txt], 1) if self.paired else torch.cat([img, txt]))
        return self._cache[1]

    def items(self, start: int):
        """Chunks of consecutive items (a tensor each) from position `start` on, forever."""
        epoch, pos = divmod(start, self.total)
        while True:
            order = np.random.default_rng([self.seed, 0, epoch]).permutation(len(self.sizes))
            ends = np.cumsum(self.sizes[order])
            for j in range(int(np.searchsorted(ends, pos, side="right")), len(order)):
                shard = int(order[j])
                rows = np.random.default_rng([self.seed, 1, epoch, shard]).permutation(int(self.sizes[shard]))
                begin = pos - int(ends[j] - self.sizes[shard])
                yield self._load(shard)[torch.from_numpy(rows[begin:])]
                pos = int(ends[j])
            epoch, pos = epoch + 1, 0

    def batches(self, start_step: int, size: int):
        """(step, batch of `size` items) from start_step on."""
        chunks, have, step = [], 0, start_step
        for chunk in self.items(start_step * size):
            while len(chunk):
                take = chunk[: size - have]
                chunks.append(take)
                have += len(take)
                chunk = chunk[len(take):]
                if have == size:
                    yield step, torch.cat(chunks)
                    chunks, have, step = [], 0, step + 1


def as_batch(items: torch.Tensor, paired: bool) -> torch.Tensor:
    """Items as the loss wants them: embeddings (B, d), or pairs (n, 2, d) stacked as [images; captions] (2n, d)."""
    return items.transpose(0, 1).reshape(-1, items.shape[-1]) if paired else items


class _Loss(torch.nn.Module):
    """The SAE's batch loss as a forward pass, so that DistributedDataParallel averages its gradients."""

    def __init__(self, model: sae.SparseAutoencoder, paired: bool):
        super().__init__()
        self.sae, self.paired = model, paired

    def forward(self, batch, since_fired):
        return sae.batch_loss(self.sae, batch, since_fired, self.paired)


def _save(path: Path, obj) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    shards.write_atomic_bytes(path, buf.getvalue())


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    """(step, path) of the finished checkpoints in an SAE folder, oldest first."""
    found = [(int(p.stem.split("-")[1]), p) for p in out.glob("checkpoint-*.pt") if p.stem.split("-")[1].isdigit()]
    return sorted(found)


def _check_identity(out: Path, identity: dict) -> None:
    """Refuse a folder that holds an SAE of another config or of other embeddings."""
    path = out / "config.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    if old == identity:
        return
    what = sae.describe(config_from_dict(old["config"]))
    cfg = {k: v for k, v in old["config"].items() if k not in ("activation", "pairing", "n_latents")}
    if old["config"] == identity["config"]:
        what += " on other embeddings (the run was embedded again)"
    else:
        what += f" ({', '.join(f'{k} {v}' for k, v in cfg.items())})"
    raise PipelineError(f"{out} holds an SAE trained with {what}; use --out-name NAME to train this one beside it, "
                        f"or delete {out}.")


def run(args) -> int:
    cfg = config_from_args(args)
    ctx = distributed.init(args.device)
    try:
        train(args.run_dir, cfg, ctx, args.out_name, args.checkpoint_every)
    finally:
        distributed.close(ctx)
    return 0


def train(run_dir: Path, cfg: sae.SAEConfig, ctx: distributed.Context | None = None, out_name: str = "sae",
          checkpoint_every: int = 1000, progress: bool = True) -> Path:
    """Train (or resume, or find finished) the SAE of cfg on a run's shards; returns its folder."""
    ctx = ctx or distributed.Context()
    run_dir = Path(run_dir)
    manifest = shards.load_manifest(run_dir)
    if not manifest["n_pairs"]:
        raise PipelineError(f"{run_dir} holds no pairs: embed a non-empty dataset first.")
    paired = sae.is_paired(cfg)
    per_rank = cfg.batch_size // 2 if paired else cfg.batch_size
    if per_rank % ctx.world_size:
        raise PipelineError(f"--batch-size {cfg.batch_size} does not split evenly over {ctx.world_size} processes "
                            f"({'pairs' if paired else 'embeddings'} per step: {per_rank}); use a multiple of "
                            f"{ctx.world_size * (2 if paired else 1)}.")
    out = run_dir / out_name
    identity = {"format": FORMAT, "config": config_to_dict(cfg), "embeddings": embeddings_digest(manifest),
                "d_in": manifest["dim"]}
    _check_identity(out, identity)
    if (out / "sae.json").is_file() and (out / "final.pt").is_file():
        if ctx.main:
            print(f"{out} already holds this SAE (final.pt); nothing to do.", file=sys.stderr)
        return out
    distributed.barrier(ctx)
    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)
        for tmp in out.glob(".*.tmp-*"):  # half-written files of a killed run
            tmp.unlink()
        shards.write_json(out / "config.json", identity)
    model, state = _start(run_dir, manifest, cfg, out, ctx)
    _loop(model, state, Stream(run_dir, manifest, cfg.seed, paired), cfg, ctx, out, identity, checkpoint_every,
          progress)
    metrics = evaluate(model, run_dir, ctx)
    if ctx.main:
        _save(out / "final.pt", {"format": FORMAT, "identity": identity,
                                 "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}})
        pd.DataFrame(state["curve"]).to_csv(buf := io.StringIO(), index=False)
        shards.write_atomic_bytes(out / "curve.csv", buf.getvalue().encode())
        shards.write_json(out / "sae.json", {
            "config": identity["config"], "description": sae.describe(cfg), "d_in": manifest["dim"],
            "embeddings": identity["embeddings"], "model": manifest["model"], "world_size": ctx.world_size,
            "steps": cfg.steps, "metrics": metrics})
        for _, path in checkpoints(out):
            path.unlink()
    distributed.barrier(ctx)
    return out


def _start(run_dir: Path, manifest: dict, cfg: sae.SAEConfig, out: Path, ctx) -> tuple:
    """A fresh SAE (pre-bias at the geometric median of the first 4096 embeddings of the stream) or the last
    checkpoint's, with its optimiser, schedule, dead-latent counters and curve."""
    torch.manual_seed(cfg.seed)
    model = sae.SparseAutoencoder(manifest["dim"], cfg)
    found = checkpoints(out) if out.is_dir() else []
    step = distributed.broadcast_object(ctx, found[-1][0] if found else 0)
    ckpt = None
    if step:
        ckpt = torch.load(out / f"checkpoint-{step}.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["model"])
        torch.set_rng_state(ckpt["torch_rng"])
        if ckpt["world_size"] != ctx.world_size and ctx.main:
            print(f"resuming a {ckpt['world_size']}-process checkpoint with {ctx.world_size} processes: the result "
                  "will differ slightly from an uninterrupted run.", file=sys.stderr)
        if ctx.main:
            print(f"resuming {out} from step {step}", file=sys.stderr)
    else:
        paired = sae.is_paired(cfg)
        stream = Stream(run_dir, manifest, cfg.seed, paired)
        _, first = next(stream.batches(0, min(stream.total, 2048 if paired else 4096)))
        with torch.no_grad():
            model.b_pre.copy_(sae.geometric_median(as_batch(first, paired)))
    model.to(ctx.device)
    opt, sched = sae.optimizer(model, cfg)
    state = {"step": step, "since_fired": torch.zeros(cfg.n_latents, device=ctx.device), "curve": [],
             "opt": opt, "sched": sched}
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        state["since_fired"] = ckpt["since_fired"].to(ctx.device)
        state["curve"] = ckpt["curve"]
    return model, state


def _loop(model, state, stream: Stream, cfg: sae.SAEConfig, ctx, out: Path, identity: dict, every: int,
          progress: bool) -> None:
    paired = sae.is_paired(cfg)
    size = cfg.batch_size // 2 if paired else cfg.batch_size
    n_emb = 2 * size if paired else size
    share = size // ctx.world_size
    loss_fn = None
    if ctx.distributed:
        ids = [torch.device(ctx.device).index] if ctx.device.startswith("cuda") else None
        ddp = torch.nn.parallel.DistributedDataParallel(_Loss(model, paired), device_ids=ids)
        loss_fn = lambda _m, batch, since_fired, _p: ddp(batch, since_fired)  # noqa: E731
    opt, sched, since_fired = state["opt"], state["sched"], state["since_fired"]
    model.train()
    bar = tqdm(total=cfg.steps, initial=state["step"], desc="training SAE", disable=not (progress and ctx.main),
               mininterval=2)
    for step, items in stream.batches(state["step"], size) if state["step"] < cfg.steps else ():
        mine = items[ctx.rank * share:(ctx.rank + 1) * share]
        batch = as_batch(mine, paired).to(ctx.device)
        loss, recon, pair, z_x, z_y = sae.train_step(model, opt, sched, batch, since_fired, paired, loss_fn)
        fired = (z_x > 0).any(0) if z_y is None else (z_x > 0).any(0) | (z_y > 0).any(0)
        if ctx.distributed:
            fired = distributed.all_reduce_sum(ctx, fired.float()) > 0
        since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + n_emb)
        if step % 50 == 0 or step == cfg.steps - 1:
            state["curve"].append({"step": step, "loss": loss.item(), "recon": recon.item(), "pairing": pair.item(),
                                   "dead": float((since_fired >= cfg.dead_after).float().mean())})
        bar.update()
        done = step + 1
        if every and done % every == 0 and done < cfg.steps and ctx.main:
            _save(out / f"checkpoint-{done}.pt", {
                "format": FORMAT, "identity": identity, "step": done, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "since_fired": since_fired,
                "curve": state["curve"], "torch_rng": torch.get_rng_state(), "world_size": ctx.world_size})
            for s, path in checkpoints(out):
                if s < done:
                    path.unlink()
        if done == cfg.steps:
            break
    bar.close()
    model.eval()


@torch.no_grad()
def evaluate(model: sae.SparseAutoencoder, run_dir: Path, ctx=None, batch_size: int = 4096) -> dict:
    """FVU, L0 and dead fraction of images, captions and both (as `sae.metrics`), streamed over the shards;
    under torchrun each rank reads its shards and the sums are reduced."""
    ctx = ctx or distributed.Context()
    d, f = model.W_dec.shape[1], model.cfg.n_latents
    # per side: [n, squared error, sum of squares, L0 count, sum of x (d)], and fired (f)
    sums = torch.zeros(2, 4 + d, dtype=torch.float64)
    fired = torch.zeros(2, f, dtype=torch.float64)
    for _, img, txt, _ in shards.iter_shards(run_dir, ctx.rank, ctx.world_size, verify=False):
        for side, e in enumerate((img, txt)):
            for chunk in prepare(e).split(batch_size):
                chunk = chunk.to(ctx.device)
                z, x_hat = model(chunk)
                sums[side, 0] += len(chunk)
                sums[side, 1] += float((chunk - x_hat).double().pow(2).sum())
                sums[side, 2] += float(chunk.double().pow(2).sum())
                sums[side, 3] += float((z > 0).sum())
                sums[side, 4:] += chunk.double().sum(0).cpu()
                fired[side] += (z > 0).any(0).double().cpu()
    distributed.all_reduce_sum(ctx, sums)
    distributed.all_reduce_sum(ctx, fired)

    def side(s, fire):
        n, sq_err, sq, l0 = (float(v) for v in s[:4])
        var = sq - float(s[4:].pow(2).sum()) / n
        return {"FVU": sq_err / var, "L0": l0 / n, "dead fraction": float((fire == 0).double().mean())}

    return {"image": side(sums[0], fired[0]), "text": side(sums[1], fired[1]), "both": side(sums.sum(0), fired.sum(0))}


def load_sae(run_dir: Path, name: str = "sae", manifest: dict | None = None) -> tuple[sae.SparseAutoencoder, dict]:
    """The finished SAE of a run and its sae.json, checked against the run's embeddings (width, then identity)."""
    run_dir = Path(run_dir)
    out = run_dir / name
    if not (out / "final.pt").is_file() or not (out / "sae.json").is_file():
        hint = "" if name == "sae" else f" --out-name {name}"
        raise PipelineError(f"{out} holds no finished SAE: run `mdsgap train-sae --run {run_dir}{hint}` first.")
    manifest = manifest or shards.load_manifest(run_dir, verify=False)
    ckpt = torch.load(out / "final.pt", map_location="cpu", weights_only=True)
    identity = ckpt.get("identity", {})
    width = ckpt["state_dict"]["b_pre"].shape[0] if "b_pre" in ckpt.get("state_dict", {}) else None
    if width != manifest["dim"]:
        raise PipelineError(f"{out}/final.pt is an SAE of {width}-dimensional embeddings, but {run_dir} holds "
                            f"{manifest['dim']}-dimensional ones (another model): delete {out} and run "
                            f"`mdsgap train-sae --run {run_dir}`.")
    if identity.get("embeddings") != embeddings_digest(manifest):
        raise PipelineError(f"{out} was trained on other embeddings than {run_dir} now holds (the run was embedded "
                            f"again): delete {out} and run `mdsgap train-sae --run {run_dir}`.")
    model = sae.SparseAutoencoder(manifest["dim"], config_from_dict(identity["config"]))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise PipelineError(f"{out}/final.pt does not match its config ({e}); delete {out} and train again.") from None
    return model.eval(), json.loads((out / "sae.json").read_text())
