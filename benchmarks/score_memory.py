"""Peak memory of `mdsgap score` at 100,000 and 1,000,000 pairs of synthetic shards, side by side.

    .venv/bin/python benchmarks/score_memory.py [--dim 256] [--latents 2048] [--k 32] [--shard 10000] [--bridge]

For each size one process writes the shards (as `mdsgap embed` would) and trains a small SAE for a few steps (its
quality does not matter here), then a fresh process runs `mdsgap score` and reports its peak resident memory
(ru_maxrss), as `benchmarks/mds_memory.py` does for the in-memory statistics. The score process's peak minus its
peak after imports is what scoring adds. The ratio of the two peaks should be close to 1: memory grows with the
latents, top-m and shard size, not with the number of pairs.

Measured on this project's shared 2-core machine (2026-11-25, defaults): 100,000 pairs peak 1,133 MiB (838 after
imports), 39 s; 1,000,000 pairs peak 1,116 MiB (839 after imports), 515 s (under load): ratio 0.98, and 0.94 for
the memory scoring adds.
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make(folder: Path, n_pairs: int, dim: int, latents: int, k: int, shard: int) -> None:
    """Synthetic shards of n_pairs pairs (sparse codes over 1,024 atoms, a modality offset) and a trained SAE."""
    import torch

    from mdsgap.features import sae
    from mdsgap.pipeline import shards
    from mdsgap.pipeline import train

    g = torch.Generator().manual_seed(0)
    atoms = torch.randn(1024, dim, generator=g)
    offset = torch.randn(dim, generator=g)
    infos = []
    for i, start in enumerate(range(0, n_pairs, shard)):
        n = min(shard, n_pairs - start)
        code = torch.zeros(n, 1024).scatter_(1, torch.randint(0, 1024, (n, 8), generator=g), 1.0)
        img, txt = code @ atoms + offset, code @ atoms - offset + 0.3 * torch.randn(n, dim, generator=g)
        infos.append(shards.write_shard(folder, i, img, txt, [f"{start + j}" for j in range(n)], "synthetic"))
    shards.write_manifest(folder, {"name": "synthetic", "dim": dim}, {"pairs": n_pairs}, infos)
    cfg = sae.SAEConfig(n_latents=latents, activation=sae.TopK(k), steps=20, batch_size=1024)
    train.train(folder, cfg, checkpoint_every=0, progress=False)


def score(folder: Path, bridge: bool) -> dict:
    from mdsgap.attribution import comparison  # noqa: F401  (what --bridge imports)
    from mdsgap.pipeline import cli

    cli.parser()  # imports every stage
    base = peak_mib()
    t = time.perf_counter()
    assert cli.main(["score", "--run", str(folder), *(["--bridge"] if bridge else [])]) == 0
    return {"seconds": time.perf_counter() - t, "peak_MiB": peak_mib(), "imports_MiB": base}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--latents", type=int, default=2048)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--shard", type=int, default=10_000, help="pairs per shard")
    ap.add_argument("--bridge", action="store_true", help="score with --bridge (latents^2 sums)")
    ap.add_argument("--sizes", default="100000,1000000", help="the two run sizes, in pairs")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--pairs", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, folder = args.child
        if mode == "make":
            make(Path(folder), args.pairs, args.dim, args.latents, args.k, args.shard)
        else:
            print(json.dumps(score(Path(folder), args.bridge)))
        sys.exit()
    common = ["--dim", str(args.dim), "--latents", str(args.latents), "--k", str(args.k), "--shard", str(args.shard)]
    print(f"dim {args.dim}, {args.latents} latents (k={args.k}), shards of {args.shard:,} pairs, "
          f"bridge {'on' if args.bridge else 'off'}")
    results = []
    for n in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, __file__, "--child", "make", tmp, "--pairs", str(n), *common], check=True,
                           stderr=subprocess.DEVNULL)
            out = subprocess.run([sys.executable, __file__, "--child", "score", tmp, *common,
                                  *(["--bridge"] if args.bridge else [])], capture_output=True, text=True, check=True)
        r = {"pairs": n, **json.loads(out.stdout.strip().splitlines()[-1])}
        results.append(r)
        print(f"{n:>9,} pairs: peak {r['peak_MiB']:7.0f} MiB (after imports {r['imports_MiB']:.0f}, scoring adds "
              f"{r['peak_MiB'] - r['imports_MiB']:.0f}), {r['seconds']:6.1f} s")
    a, b = results
    print(f"peak memory ratio ({b['pairs']:,} / {a['pairs']:,} pairs): {b['peak_MiB'] / a['peak_MiB']:.2f}; added by "
          f"scoring: {(b['peak_MiB'] - b['imports_MiB']) / (a['peak_MiB'] - a['imports_MiB']):.2f}  "
          f"(pairs ratio {b['pairs'] / a['pairs']:.1f})")
