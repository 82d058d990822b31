"""Score every latent of a run's SAE: MDS variants, attribution classes and top examples, streamed over the shards.

    mdsgap score --run RUN [--variants ratio,mass,frequency,energy] [--k-std 1] [--min-pairs 5] [--top-m 10]
    torchrun --nproc_per_node=2 -m -- mdsgap.pipeline.cli score --run RUN ...   (`--`: torchrun would take --run)

Writes RUN/scores.csv (and scores.parquet when pyarrow is installed), one row per latent: firing counts, every MDS
variant and its class under the mean +- k std rule, the bimodal class of the energy score (Dhimoïla et al. 2026),
with --bridge the bridge score mu_B and its class, and the keys and activations of the latent's top-m images and
captions; RUN/scores.json holds the thresholds and settings. Codes are of matched pairs (`encode_pair`): each
modality's alone for every SAE but SharedTopK, whose support is chosen per pair. Memory depends on the latents and top-m (with
--bridge, latents squared), never on the number of pairs. Under torchrun each rank scores its shards and the sums
are reduced, so the table is the one a single process writes.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mdsgap import attribution
from mdsgap.attribution import dominance
from mdsgap.pipeline import distributed, shards
from mdsgap.pipeline import PipelineError
from mdsgap.pipeline.train import load_sae, prepare

EPS = 1e-8
"""An activation above EPS counts as firing (`DominanceStats`' default)."""
BIMODAL = (0.05, 0.95)
"""Dhimoïla et al.'s (2026) band of the energy score for a bimodal latent."""


def add_arguments(p) -> None:
    p.add_argument("--run", dest="run_dir", metavar="RUN", required=True, type=Path,
                   help="run folder with embeddings and a trained SAE")
    p.add_argument("--sae", default="sae", help="the SAE's subfolder (train-sae's --out-name; default sae)")
    p.add_argument("--variants", default=",".join(dominance.VARIANTS),
                   help=f"MDS variants, comma-separated (default {','.join(dominance.VARIANTS)})")
    p.add_argument("--k-std", type=float, default=1.0, help="class thresholds at mean +- k std (default 1)")
    p.add_argument("--min-pairs", type=int, default=5, help="a latent firing on fewer pairs is rare (default 5)")
    p.add_argument("--top-m", type=int, default=10, help="top examples kept per latent and side (default 10)")
    p.add_argument("--bridge", action="store_true",
                   help="also the bridge score mu_B (memory: latents^2 x 8 bytes, 128 MiB at 4096 latents)")
    p.add_argument("--batch-size", type=int, default=1024, help="pairs encoded at a time (default 1024)")
    p.add_argument("--device", default="auto", help="auto (a GPU per rank if any), cpu, cuda")


def scores_path(run_dir: Path, name: str = "sae", suffix: str = ".csv") -> Path:
    """RUN/scores.csv for the default SAE, RUN/scores-<name>.csv for another."""
    return Path(run_dir) / (f"scores{suffix}" if name == "sae" else f"scores-{name}{suffix}")


def parse_variants(text: str) -> list[str]:
    variants = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(dominance.VARIANTS))
    if unknown or not variants:
        raise PipelineError(f"unknown MDS variant(s) {unknown or text!r}: use a comma-separated list of "
                            f"{', '.join(dominance.VARIANTS)}.")
    return variants


class TopM:
    """Each feature's m largest activations and the global indices of their pairs, merged batch by batch, ties
    broken by the lower index. Batches are cut from each shard alike whatever the number of ranks, so the merged
    result of several ranks is the single-process one."""

    def __init__(self, n_features: int, m: int):
        self.m = m
        self.values = torch.full((n_features, m), -torch.inf)
        self.index = torch.full((n_features, m), -1, dtype=torch.int64)

    def merge(self, values: torch.Tensor, index: torch.Tensor) -> None:
        """Merge candidates (F, c) with their pair indices (F, c); index -1 marks an empty slot.

        One int64 key per entry orders them: the float32 bits of a positive activation (monotonic in its value) in
        the high word, 2^32 - 1 - index in the low word; empty slots get -1. A single topk then ranks by value, then
        by lower index."""
        v, i = torch.cat([self.values, values], 1), torch.cat([self.index, index], 1)
        bits = v.float().contiguous().view(torch.int32).to(torch.int64)
        key = torch.where(i >= 0, (bits << 32) | (0xFFFFFFFF - i), -1)
        key = key.topk(self.m, dim=1).values
        empty = key < 0
        self.index = torch.where(empty, -1, 0xFFFFFFFF - (key & 0xFFFFFFFF))
        self.values = torch.where(empty, -torch.inf, (key >> 32).to(torch.int32).view(torch.float32))

    def update(self, acts: torch.Tensor, offset: int) -> None:
        """Add a batch of activations (B, F) of the pairs offset, offset + 1, ... (only those above EPS count)."""
        v, i = acts.T.topk(min(self.m, len(acts)), dim=1)
        fires = v > EPS
        self.merge(torch.where(fires, v, -torch.inf), torch.where(fires, i + offset, -1))

    def gather(self, ctx) -> None:
        """Merge every rank's top-m (all ranks end with the same)."""
        if ctx.distributed:
            values, index = distributed.all_gather(ctx, self.values), distributed.all_gather(ctx, self.index)
            self.values, self.index = torch.full_like(self.values, -torch.inf), torch.full_like(self.index, -1)
            for v, i in zip(values, index):
                self.merge(v, i)


class BridgeSums:
    """Streaming sums of paired codes for the bridge: sum z_x, sum z_y and sum z_x z_y^T (F x F, float64), adding
    each pair's outer product over its active latents only (sparse codes cost B k^2, not B F^2)."""

    def __init__(self, n_features: int):
        self.f = n_features
        self.n = 0
        self.x, self.y = (torch.zeros(n_features, dtype=torch.float64) for _ in range(2))
        self.xy = torch.zeros(n_features, n_features, dtype=torch.float64)

    def update(self, ax: torch.Tensor, ay: torch.Tensor) -> None:
        ax, ay = ax.double().clamp_min(0), ay.double().clamp_min(0)
        self.n += len(ax)
        self.x += ax.sum(0)
        self.y += ay.sum(0)
        kx, ky = int((ax > 0).sum(1).max()), int((ay > 0).sum(1).max())
        if kx * ky > self.f * 64:  # dense codes (e.g. ReLU): a matrix product is cheaper
            self.xy += ax.T @ ay
        elif kx and ky:
            vx, ix = ax.topk(kx, 1)
            vy, iy = ay.topk(ky, 1)
            flat = (ix[:, :, None] * self.f + iy[:, None, :]).flatten()
            self.xy.view(-1).index_add_(0, flat, (vx[:, :, None] * vy[:, None, :]).flatten())

    def reduce(self, ctx) -> None:
        n = torch.tensor([float(self.n)], dtype=torch.float64)
        for t in (n, self.x, self.y, self.xy):
            distributed.all_reduce_sum(ctx, t)
        self.n = int(n)

    def covariance(self) -> np.ndarray:
        """W = E[z_x z_y^T] - E[z_x] E[z_y]^T, as `attribution.CrossCovariance.matrix()`."""
        mx, my = self.x / self.n, self.y / self.n
        return (self.xy / self.n - torch.outer(mx, my)).numpy()


def accumulate(model, run_dir: Path, manifest: dict, ctx, top_m: int, bridge: bool, batch_size: int,
               progress: bool = True):
    """DominanceStats, top-m per side (and bridge sums) over this rank's shards, reduced over ranks."""
    f = model.cfg.n_latents
    stats = dominance.DominanceStats(f, eps=EPS)
    tops = TopM(f, top_m), TopM(f, top_m)
    sums = BridgeSums(f) if bridge else None
    offsets = np.concatenate([[0], np.cumsum([s["n"] for s in manifest["shards"]])])
    mine = [i for i in range(len(manifest["shards"])) if i % ctx.world_size == ctx.rank]
    bar = tqdm(total=len(mine), desc="scoring shards", disable=not (progress and ctx.main), mininterval=2)
    with torch.no_grad():
        for i, img, txt, _ in shards.iter_shards(run_dir, ctx.rank, ctx.world_size, verify=False):
            for start in range(0, len(img), batch_size):
                x, y = (prepare(e[start:start + batch_size]).to(ctx.device) for e in (img, txt))
                ax, ay = (z.cpu() for z in model.encode_pair(x, y))  # SharedTopK: one support per pair
                stats.update(ax, ay)
                tops[0].update(ax, int(offsets[i]) + start)
                tops[1].update(ay, int(offsets[i]) + start)
                if sums is not None:
                    sums.update(ax, ay)
            bar.update()
    bar.close()
    stats.all_reduce(lambda t: distributed.all_reduce_sum(ctx, t))
    for top in tops:
        top.gather(ctx)
    if sums is not None:
        sums.reduce(ctx)
    return stats, tops, sums


def read_keys(run_dir: Path, manifest: dict, indices: np.ndarray) -> dict[int, str]:
    """Keys of the pairs with these global indices, reading only the shards' metadata."""
    from safetensors import safe_open

    offsets = np.cumsum([s["n"] for s in manifest["shards"]])
    wanted = np.unique(indices[indices >= 0])
    out = {}
    for shard in np.unique(np.searchsorted(offsets, wanted, side="right")):
        with safe_open(str(Path(run_dir) / shards.SUBDIR / manifest["shards"][shard]["name"]), framework="pt") as fh:
            keys = json.loads(fh.metadata()["keys"])
        start = int(offsets[shard - 1]) if shard else 0
        for g in wanted[(wanted >= start) & (wanted < offsets[shard])]:
            out[int(g)] = keys[int(g) - start]
    return out


def table(stats, tops, sums, keys: dict, variants: list[str], k_std: float, min_pairs: int,
          decoder: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """The per-latent table and its settings (thresholds of each variant's std rule)."""
    firing = stats.firing()
    fx, fy = stats.firing_by_side()
    df = pd.DataFrame({"feature": np.arange(len(firing)), "fires_image": fx.astype(np.int64),
                       "fires_text": fy.astype(np.int64), "fires_pair": firing.astype(np.int64)})
    thresholds = {}
    for v in variants:
        s = stats.scores(v)
        t = dominance.std_thresholds(s, k_std, firing >= min_pairs)
        thresholds[v] = [t.low, t.high]
        df[f"mds_{v}"] = s
        df[f"class_{v}"] = dominance.classify(s, firing, t, min_pairs)
    mu = stats.scores("energy")
    bimodal = attribution.energy_classes(mu, *BIMODAL)
    bimodal[(firing < min_pairs) & (firing > 0)] = dominance.RARE
    df["class_bimodal"] = bimodal
    if sums is not None:
        from mdsgap.attribution import comparison  # the share cuts of chapter 4 (imported only here: it pulls in scipy)

        b = attribution.bridge(sums.covariance(), decoder)
        df["mu_bridge"] = attribution.bridge_modality_score(b)
        df["cross_modal_share"] = attribution.cross_modal_share(b, *stats.mean_squares())
        df["class_bridge"] = comparison.share_classes(df["mu_bridge"].to_numpy(), firing, min_pairs)
    for side, top in zip(("image", "text"), tops):
        live = top.index >= 0
        df[f"top_{side}"] = [json.dumps([keys[int(g)] for g in row[ok]]) for row, ok in zip(top.index.numpy(), live)]
        df[f"top_{side}_acts"] = [json.dumps([round(float(a), 6) for a in row[ok]])
                                  for row, ok in zip(top.values.numpy(), live)]
    return df, {"thresholds": thresholds}


def score(run_dir: Path, ctx=None, name: str = "sae", variants=dominance.VARIANTS, k_std: float = 1.0,
          min_pairs: int = 5, top_m: int = 10, bridge: bool = False, batch_size: int = 1024,
          progress: bool = True) -> pd.DataFrame | None:
    """Score a run's SAE and write the table (rank 0, which also returns it; other ranks return None)."""
    ctx = ctx or distributed.Context()
    run_dir = Path(run_dir)
    variants = list(variants)
    if top_m < 1 or batch_size < 1 or min_pairs < 0:
        raise PipelineError("--top-m and --batch-size must be at least 1 and --min-pairs at least 0.")
    manifest = shards.load_manifest(run_dir)
    model, info = load_sae(run_dir, name, manifest)
    model.to(ctx.device)
    stats, tops, sums = accumulate(model, run_dir, manifest, ctx, top_m, bridge, batch_size, progress)
    if not ctx.main:
        return None
    keys = read_keys(run_dir, manifest, torch.cat([t.index for t in tops]).flatten().numpy())
    df, extra = table(stats, tops, sums, keys, variants, k_std, min_pairs, model.W_dec.detach().double().cpu().numpy())
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    shards.write_atomic_bytes(scores_path(run_dir, name), buf.getvalue().encode())
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        raw = io.BytesIO()
        df.to_parquet(raw, index=False)
        shards.write_atomic_bytes(scores_path(run_dir, name, ".parquet"), raw.getvalue())
    shards.write_json(scores_path(run_dir, name, ".json"), {
        "sae": name, "description": info["description"], "n_pairs": stats.n_pairs, "variants": variants,
        "k_std": k_std, "min_pairs": min_pairs, "top_m": top_m, "bridge": bridge, "bimodal_band": list(BIMODAL),
        "world_size": ctx.world_size, "class_counts": {c: df[c].value_counts().to_dict()
                                                       for c in df.columns if c.startswith("class_")}, **extra})
    return df


def run(args) -> int:
    variants = parse_variants(args.variants)
    ctx = distributed.init(args.device)
    try:
        score(args.run_dir, ctx, args.sae, variants, args.k_std, args.min_pairs, args.top_m, args.bridge,
              args.batch_size)
    finally:
        distributed.close(ctx)
    return 0
