"""`mdsgap train-sae` at the size of a real CLIP against overcomplete's TopK SAE, side by side.

    .venv/bin/pip install overcomplete==0.3.0   # once; a benchmark-only dependency
    .venv/bin/python benchmarks/pipeline_sae.py [--pairs 20000] [--dim 512] [--latents 4096] [--k 32] [--epochs 3]

Synthetic CLIP-like embeddings (512-d sparse combinations of 8,192 unit atoms, images and captions offset apart, so
there is a modality gap) are written as the float16 shards `mdsgap embed` writes. mdsgap trains through the
`train-sae` code path (`mdsgap.pipeline.train.train`: shards streamed, batches from (seed, step), checkpoint
bookkeeping) and overcomplete (`sae_vs_overcomplete.run_overcomplete`) on the same embeddings held in memory, with
the same latents, k, batch size, learning rate, samples seen and torch threads; runs alternate. mdsgap's time
leaves out its final metrics pass over the shards (overcomplete has none). Prints throughput (samples/s) and FVU and
L0 on all the embeddings, and the ratios mdsgap / overcomplete (targets: throughput >= 1 at equal L0, FVU <= 1).

Measured on this project's shared 2-core machine (2026-11-25, defaults, --repeats 3, load average about 2.5):
mdsgap train-sae 4,394 samples/s, FVU 0.551; overcomplete 2,911 samples/s, FVU 0.692; L0 32.00 for both:
throughput ratio 1.51, FVU ratio 0.80.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sae_vs_overcomplete import fvu_l0, run_overcomplete  # noqa: E402  (also restores matplotlib's get_cmap)

from mdsgap.features import sae  # noqa: E402
from mdsgap.pipeline import shards  # noqa: E402
from mdsgap.pipeline import train  # noqa: E402


def write_run(folder: Path, n_pairs: int, dim: int, shard: int = 10_000, seed: int = 12345) -> torch.Tensor:
    """A finished embedding run of n_pairs synthetic pairs; returns every embedding as the SAE sees it. The data's
    seed must differ from the SAEs' (0, 1, ...): with seed 0 the atoms would be the first draws of an SAE's
    seed-0 initialisation, its decoder would start at the true dictionary."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.nn.functional.normalize(torch.randn(8192, dim, generator=g), dim=1)
    offset = torch.nn.functional.normalize(torch.randn(dim, generator=g), dim=0)
    infos, seen = [], []
    for i, start in enumerate(range(0, n_pairs, shard)):
        n = min(shard, n_pairs - start)
        idx = torch.randint(0, 8192, (n, 16), generator=g)
        code = torch.zeros(n, 8192).scatter_(1, idx, torch.empty(n, 16).exponential_(generator=g))
        common = code @ atoms
        img = common + 1.5 * offset + 0.2 * torch.randn(n, dim, generator=g)
        txt = common - 1.5 * offset + 0.2 * torch.randn(n, dim, generator=g)
        infos.append(shards.write_shard(folder, i, img, txt, [f"{start + j}" for j in range(n)], "synthetic"))
        seen += [img, txt]
    shards.write_manifest(folder, {"name": "synthetic-clip", "dim": dim}, {"pairs": n_pairs}, infos)
    img = torch.cat(seen[0::2]).half().float()
    txt = torch.cat(seen[1::2]).half().float()
    return torch.cat([train.prepare(img), train.prepare(txt)])


def run_pipeline(folder: Path, x: torch.Tensor, latents, k, batch, lr, steps, seed):
    cfg = sae.SAEConfig(n_latents=latents, activation=sae.TopK(k), steps=steps, batch_size=batch, lr=lr, seed=seed)
    out = f"sae-{seed}"
    timed = {}
    evaluate = train.evaluate

    def timed_evaluate(*a, **kw):
        t = time.perf_counter()
        result = evaluate(*a, **kw)
        timed["evaluate"] = time.perf_counter() - t
        return result

    train.evaluate = timed_evaluate
    try:
        t = time.perf_counter()
        train.train(folder, cfg, out_name=out, checkpoint_every=max(steps // 4, 1), progress=False)
        elapsed = time.perf_counter() - t - timed["evaluate"]
    finally:
        train.evaluate = evaluate
    model, _ = train.load_sae(folder, out)
    return steps * batch / elapsed, fvu_l0(lambda v: model(v), x)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--latents", type=int, default=4096)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # first use imports torch._dynamo (seconds): not timed
    with tempfile.TemporaryDirectory() as tmp:
        x = write_run(Path(tmp), args.pairs, args.dim)
        steps = args.epochs * (len(x) // args.batch)  # the same samples seen by both
        print(f"{len(x)} embeddings of dim {x.shape[1]} | {args.latents} latents, k={args.k}, batch {args.batch}, "
              f"lr {args.lr}, {steps} steps ({args.epochs} epochs) | torch threads {torch.get_num_threads()}")
        results = {"mdsgap train-sae": [], "overcomplete": []}
        for r in range(args.repeats):
            results["mdsgap train-sae"].append(run_pipeline(Path(tmp), x, args.latents, args.k, args.batch, args.lr,
                                                            steps, seed=r))
            results["overcomplete"].append(run_overcomplete(x, args.latents, args.k, args.batch, args.lr,
                                                            args.epochs, seed=r))
    summary = {}
    for name, runs in results.items():
        rate = statistics.median(r[0] for r in runs)
        fvu = statistics.median(r[1][0] for r in runs)
        l0 = statistics.median(r[1][1] for r in runs)
        summary[name] = (rate, fvu, l0)
        print(f"{name:>16}: {rate:8.0f} samples/s   FVU {fvu:.4f}   L0 {l0:.2f}   (runs: "
              + ", ".join(f"{r[0]:.0f}/s FVU {r[1][0]:.4f}" for r in runs) + ")")
    (ra, fa, la), (rb, fb, lb) = summary.values()
    print(f"ratios mdsgap train-sae / overcomplete: throughput {ra / rb:.2f} (target >= 1), FVU {fa / fb:.2f} "
          f"(target <= 1), L0 {la / lb:.2f} (equal L0 = 1)")
