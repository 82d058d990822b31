"""Peak memory of streaming MDS: 1,000,000 pairs x 4,096 features against 100,000 pairs, side by side.

    .venv/bin/python benchmarks/mds_memory.py [--features 4096] [--batch 2048] [--boot 0]

Each size runs in its own process, so its peak resident memory (ru_maxrss) is its own. Activations are
generated batch by batch (sparse, non-negative, like SAE latents), never held all at once. The ratio of
the two peaks should be close to 1: memory grows with features (and bootstrap replicates), not pairs.
"""
import argparse
import json
import resource
import subprocess
import sys
import time


def run(n_pairs: int, n_features: int, batch: int, boot: int) -> dict:
    import torch

    from mdsgap.attribution import dominance

    g = torch.Generator().manual_seed(0)
    stats = dominance.DominanceStats(n_features, n_boot=boot)
    start = time.perf_counter()
    for s in range(0, n_pairs, batch):
        b = min(batch, n_pairs - s)
        ax = torch.rand(b, n_features, generator=g).sub_(0.97).clamp_min_(0)
        ay = torch.rand(b, n_features, generator=g).sub_(0.98).clamp_min_(0)
        stats.update(ax, ay)
    scores = stats.scores()
    return {"pairs": n_pairs, "features": n_features, "seconds": time.perf_counter() - start,
            "peak_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "mean_mds": float(scores.mean())}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--boot", type=int, default=0)
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run(args.child, args.features, args.batch, args.boot)))
        sys.exit()
    results = []
    for n in (100_000, 1_000_000):
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--features", str(args.features),
                              "--batch", str(args.batch), "--boot", str(args.boot)], capture_output=True, text=True,
                             check=True)
        results.append(json.loads(out.stdout))
        r = results[-1]
        print(f"{r['pairs']:>9,} pairs x {r['features']} features: peak {r['peak_MiB']:7.0f} MiB, {r['seconds']:6.1f} s")
    print(f"peak memory ratio (1M / 100k pairs): {results[1]['peak_MiB'] / results[0]['peak_MiB']:.2f}  "
          f"(pairs ratio 10.0)")
