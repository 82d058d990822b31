"""mdsgap's plain TopK SAE against its paired variants: the aligned SAE (alignment penalty), the IsoEnergy SAE and
the shared-support SAE (SharedTopK), on the same image-caption pairs.

    .venv/bin/python benchmarks/sae_aligned.py [--data auto|world|synthetic] [--pairs 10000] [--epochs 15] [--repeats 2]
                                               [--threads N]

Data: with --data world (or auto, when the book's default small CLIP is already in $MDSGAP_CACHE; point it at
.cache/mdsgap to reuse the book's) the unit image and caption embeddings of that CLIP on the world's "features"
split, as benchmarks/sae_vs_overcomplete.py uses; otherwise (synthetic) 64-d pairs with a modality gap: shared
concept directions, a modality-specific part per concept and a constant offset per modality.

Every variant gets the same number of latents and k, the same batch (embeddings per step: the plain SAE draws
them from the stacked embeddings, a paired one draws batch / 2 pairs), learning rate, steps and torch threads.
Runs alternate (plain, aligned, isoenergy, shared, plain, ...) so drifts in machine speed hit all. Prints
training throughput (embeddings/s of wall time, and per CPU-second of the process; medians over repeats), FVU
and L0 per modality on the training pairs (a paired SAE encodes each pair with `encode_pair`), the mean cosine
between paired codes and the share of code energy on bimodal latents (energy modality score within 0.05-0.95),
then the ratios variant / plain.

Measured on this project's 2-core machine while another job used the cores (2026-11-25, defaults with
--threads 1, the book's cached CLIP; with two threads each the runs oversubscribed the cores and timings swung
30-fold): plain 48,742 embeddings/s, FVU image 0.0365, text 0.0238, paired-code cosine 0.045; aligned 39,846/s,
FVU 0.0456 / 0.0317, cosine 0.473; isoenergy 43,299/s, FVU 0.0627 / 0.0435, cosine 0.292; shared 45,822/s,
FVU 0.0858 / 0.0597, cosine 0.489, L0 7.26 / 6.91. Throughput ratios 0.82 / 0.89 / 0.94: the paired loop itself
costs little (shared), the masked cosine of the alignment penalty on dense codes costs about 2 ms a step.
"""
import argparse
import statistics
import time

import torch

from mdsgap import cache, experiment, gap, world
from mdsgap.clip import embeddings, training
from mdsgap.features import sae
from mdsgap.features.synthetic import gapped_pairs


def world_pairs(n_pairs: int) -> tuple[torch.Tensor, torch.Tensor]:
    s = experiment.ExperimentConfig()
    clip = experiment.subject(s, progress=False).clip
    pairs, source = embeddings.world_pairs(world.WorldConfig(), n_pairs, s.seed, "features")
    x, y = embeddings.embed_pairs(clip, pairs, source, progress=False)
    return gap.normalize(x).float(), gap.normalize(y).float()


def book_clip_cached() -> bool:
    """Whether the book's default small CLIP is in the cache (the key `training.cached_clip` uses)."""
    key = training.model_key(experiment.ExperimentConfig().train_config())
    return (cache.entry_path("models", key) / "config.json").is_file()


def synthetic_pairs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`mdsgap.features.synthetic.gapped_pairs` at the benchmark's size: 64-d, 96 concepts, 6 per pair."""
    return gapped_pairs(n, d=64, n_concepts=96, m=6, gap=1.0, spec=0.7, seed=seed)


VARIANTS = {
    "plain": (lambda k: sae.TopK(k), None),
    "aligned": (lambda k: sae.TopK(k), sae.Alignment()),
    "isoenergy": (lambda k: sae.TopK(k), sae.IsoEnergy()),
    "shared": (lambda k: sae.SharedTopK(k), None),
}


def run(name, x, y, latents, k, batch, lr, steps, seed):
    act, pairing = VARIANTS[name]
    cfg = sae.SAEConfig(n_latents=latents, activation=act(k), steps=steps, batch_size=batch, lr=lr, seed=seed,
                        pairing=pairing)
    t, cpu = time.perf_counter(), time.process_time()
    if name == "plain":
        model, _ = sae.train_sae(torch.cat([x, y]), cfg, progress=False)
    else:
        model, _ = sae.train_paired_sae(x, y, cfg, progress=False)
    elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
    return steps * batch / elapsed, steps * batch / cpu, sae.paired_metrics(model, x, y)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", choices=("auto", "world", "synthetic"), default="auto")
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--latents", type=int, default=256)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--batch", type=int, default=512, help="embeddings per step (a paired SAE draws batch / 2 pairs)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--variants", default="plain,aligned,isoenergy,shared")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (0: torch's default); 1 keeps timings sane when other work shares the cores")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.variants.split(",")
    assert names[0] == "plain" and set(names) <= set(VARIANTS), f"--variants starts with plain; available: {list(VARIANTS)}"

    use_world = args.data == "world" or (args.data == "auto" and book_clip_cached())
    x, y = world_pairs(args.pairs) if use_world else synthetic_pairs(args.pairs)
    source = "the book's small CLIP on the world" if use_world else "synthetic gapped pairs"
    steps = args.epochs * (2 * len(x) // args.batch)  # the same embeddings seen by every variant
    print(f"{len(x)} pairs of dim {x.shape[1]} ({source}; paired cosine {float((x * y).sum(1).mean()):.2f}) | "
          f"{args.latents} latents, k={args.k}, batch {args.batch} embeddings, lr {args.lr}, {steps} steps "
          f"({args.epochs} epochs) | torch threads {torch.get_num_threads()}")
    results = {name: [] for name in names}
    for r in range(args.repeats):
        for name in names:
            results[name].append(run(name, x, y, args.latents, args.k, args.batch, args.lr, steps, seed=r))
    keys = ("image FVU", "text FVU", "image L0", "text L0", "paired cosine", "bimodal energy")
    summary = {}
    for name, runs in results.items():
        summary[name] = {"rate": statistics.median(r[0] for r in runs), "cpu rate": statistics.median(r[1] for r in runs),
                         **{key: statistics.median(r[2][key] for r in runs) for key in keys}}
        s = summary[name]
        print(f"{name:>10}: {s['rate']:7.0f} emb/s ({s['cpu rate']:6.0f} per CPU-s)   FVU img {s['image FVU']:.4f} "
              f"txt {s['text FVU']:.4f}   L0 img {s['image L0']:.2f} txt {s['text L0']:.2f}   paired cos "
              f"{s['paired cosine']:.3f}   bimodal energy {s['bimodal energy']:.3f}   (runs: "
              + ", ".join(f"{r[0]:.0f}/s" for r in runs) + ")")
    base = summary["plain"]
    for name in names[1:]:
        s = summary[name]
        print(f"ratios {name} / plain: throughput {s['rate'] / base['rate']:.2f} (per CPU-s "
              f"{s['cpu rate'] / base['cpu rate']:.2f}), FVU img "
              f"{s['image FVU'] / base['image FVU']:.2f} txt {s['text FVU'] / base['text FVU']:.2f}, L0 img "
              f"{s['image L0'] / base['image L0']:.2f} txt {s['text L0'] / base['text L0']:.2f}; paired cos "
              f"{base['paired cosine']:.3f} -> {s['paired cosine']:.3f}")
