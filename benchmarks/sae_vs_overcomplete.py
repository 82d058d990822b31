"""mdsgap's TopK SAE against the TopK SAE of the `overcomplete` library, on the same embeddings.

    .venv/bin/pip install overcomplete==0.3.0   # once; a benchmark-only dependency
    .venv/bin/python benchmarks/sae_vs_overcomplete.py [--pairs 10000] [--epochs 30] [--repeats 2]

Both SAEs get the same data (the unit image and text embeddings of the default small CLIP, trained on
first use and cached in $MDSGAP_CACHE; point it at .cache/mdsgap to reuse the book's), the same number
of latents and k, the same batch size, learning rate and number of samples seen, and the same torch
threads. Runs alternate (mdsgap, overcomplete, mdsgap, ...) so drifts in
machine speed hit both. Prints training throughput (samples/s, median over repeats) and FVU and L0 on the
training data, and the ratios mdsgap / overcomplete. Target: throughput ratio >= 1 at equal L0 and an FVU
ratio <= 1. Each side is trained with its own recipe: mdsgap's (AuxK, geometric-median pre-bias, unit-norm
decoder) and overcomplete's own `train_sae` with its default encoder and its TopK loss,
`top_k_auxiliary_loss`.

Measured on this project's 2-core machine (2026-11-22, defaults): mdsgap 67,103 samples/s, FVU 0.0147;
overcomplete 37,367 samples/s, FVU 0.0205; L0 8.00 for both: throughput ratio 1.80, FVU ratio 0.72.
"""
import argparse
import statistics
import time

import matplotlib
import matplotlib.cm
import torch

# overcomplete 0.3.0 calls matplotlib.cm.get_cmap, removed in matplotlib 3.9; restore the alias it needs.
if not hasattr(matplotlib.cm, "get_cmap"):
    matplotlib.cm.get_cmap = matplotlib.colormaps.get_cmap

try:
    from overcomplete.sae import TopKSAE, train_sae as oc_train
    from overcomplete.sae.losses import top_k_auxiliary_loss
except ImportError as e:  # pragma: no cover - a benchmark-only dependency
    raise SystemExit(f"This benchmark needs the overcomplete library: .venv/bin/pip install overcomplete ({e})")

from mdsgap import experiment, gap, world
from mdsgap.clip import embeddings
from mdsgap.features import sae


def data(n_pairs: int) -> torch.Tensor:
    s = experiment.ExperimentConfig()
    clip = experiment.subject(s).clip
    pairs, source = embeddings.world_pairs(world.WorldConfig(), n_pairs, s.seed, "features")
    x, y = embeddings.embed_pairs(clip, pairs, source)
    return torch.cat([gap.normalize(x), gap.normalize(y)]).float()


@torch.no_grad()
def fvu_l0(encode_decode, x: torch.Tensor, chunk: int = 8192) -> tuple[float, float]:
    """FVU and L0 of an (encode, decode) map on x, in chunks (codes of 4,096 latents on every row would not fit)."""
    sq_err, l0 = 0.0, 0.0
    for c in x.split(chunk):
        z, x_hat = encode_decode(c)
        sq_err += float((c - x_hat).pow(2).sum())
        l0 += float((z > 0).sum())
    return sq_err / float((x - x.mean(0)).pow(2).sum()), l0 / len(x)


def run_mdsgap(x, latents, k, batch, lr, steps, seed):
    cfg = sae.SAEConfig(n_latents=latents, activation=sae.TopK(k), steps=steps, batch_size=batch, lr=lr, seed=seed)
    t = time.perf_counter()
    model, _ = sae.train_sae(x, cfg, progress=False)
    elapsed = time.perf_counter() - t
    return steps * batch / elapsed, fvu_l0(lambda v: model(v), x)


def run_overcomplete(x, latents, k, batch, lr, epochs, seed):
    torch.manual_seed(seed)
    model = TopKSAE(x.shape[1], nb_concepts=latents, top_k=k, device="cpu")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=batch, shuffle=True,
                                         drop_last=True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t = time.perf_counter()
    oc_train(model, loader, top_k_auxiliary_loss, opt, nb_epochs=epochs, monitoring=0)
    elapsed = time.perf_counter() - t
    model.eval()
    return epochs * len(loader) * batch / elapsed, fvu_l0(lambda v: model(v)[1:], x)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--latents", type=int, default=256)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    x = data(args.pairs)
    batches_per_epoch = len(x) // args.batch
    steps = args.epochs * batches_per_epoch  # the same samples seen by both
    print(f"{len(x)} embeddings of dim {x.shape[1]} | {args.latents} latents, k={args.k}, batch {args.batch}, "
          f"lr {args.lr}, {steps} steps ({args.epochs} epochs) | torch threads {torch.get_num_threads()}")
    results = {"mdsgap": [], "overcomplete": []}
    for r in range(args.repeats):
        results["mdsgap"].append(run_mdsgap(x, args.latents, args.k, args.batch, args.lr, steps, seed=r))
        results["overcomplete"].append(run_overcomplete(x, args.latents, args.k, args.batch, args.lr, args.epochs, seed=r))
    summary = {}
    for name, runs in results.items():
        rate = statistics.median(r[0] for r in runs)
        fvu = statistics.median(r[1][0] for r in runs)
        l0 = statistics.median(r[1][1] for r in runs)
        summary[name] = (rate, fvu, l0)
        print(f"{name:>13}: {rate:9.0f} samples/s   FVU {fvu:.4f}   L0 {l0:.2f}   (runs: "
              + ", ".join(f"{r[0]:.0f}/s FVU {r[1][0]:.4f}" for r in runs) + ")")
    (ra, fa, la), (rb, fb, lb) = summary["mdsgap"], summary["overcomplete"]
    print(f"ratios mdsgap / overcomplete: throughput {ra / rb:.2f} (target >= 1), FVU {fa / fb:.2f} (target <= 1), "
          f"L0 {la / lb:.2f} (equal L0 = 1)")
