"""Each training loop the book runs, per step, against this machine's floor for the same model.

    .venv/bin/python benchmarks/training_floor.py [--steps 40] [--threads 1 2] [--only clip decoder]

A loop's cost per step is measured by running the library's own training function at N and 2N steps,
(T(2N) - T(N)) / N, so data generation, caching and other setup fall out (they are printed apart as
T(N) - N * step). The floor is the same model's bare forward, backward and optimiser step, on one batch
prepared beforehand. The ratio (loop / floor) is the share of a step spent outside the model: 1.0 means
the loop adds nothing. Each is timed at every thread count of --threads, since small models on two cores
are often faster on one. Shapes are the `ci` profile's.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("MDSGAP_CACHE", tempfile.mkdtemp(prefix="mdsgap-bench-"))

from mdsgap import experiment, vlm, world  # noqa: E402
from mdsgap.clip import models, training  # noqa: E402
from mdsgap.edit import decoder, reader  # noqa: E402
from mdsgap.features import sae  # noqa: E402
from mdsgap.vlm import model as vlm_model  # noqa: E402


def _seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _bare(model: torch.nn.Module, loss_fn, steps: int) -> float:
    """Seconds per step of loss_fn() -> backward -> AdamW step, after two warm-up steps."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    return _seconds(lambda: [step() for _ in range(steps)]) / steps


def clip_loop(cfg: training.TrainConfig):
    def real(steps):
        return _seconds(lambda: training.train_clip(
            dataclasses.replace(cfg, steps=steps), progress=False))

    def floor(steps):
        from open_clip.loss import ClipLoss

        clip = models.create_clip(cfg.model, "", seed=0)
        clip.model.token_embedding.weight.requires_grad_(False)
        pairs = world.generate(cfg.world, cfg.batch_size, seed=0, split="bench")
        images, tokens = clip.image_tensor(pairs.images), clip.tokenizer(pairs.captions)
        clip.model.train()
        loss = ClipLoss()
        return _bare(clip.model, lambda: loss(clip.model.encode_image(images, normalize=True),
                                              clip.model.encode_text(tokens, normalize=True), 100.0), steps)
    return real, floor


def sae_loop():
    cfg = sae.SAEConfig(n_latents=256, activation=sae.TopK(8))
    x = torch.nn.functional.normalize(torch.randn(20_000, 64), dim=1)

    def real(steps):
        return _seconds(lambda: sae.train_sae(x, dataclasses.replace(cfg, steps=steps), progress=False))

    def floor(steps):
        model = sae.SparseAutoencoder(64, cfg)
        batch, since = x[:cfg.batch_size], torch.zeros(cfg.n_latents)
        return _bare(model, lambda: sae.batch_loss(model, batch, since)[0], steps)
    return real, floor


def decoder_loop():
    cfg = decoder.DecoderConfig(channels=(32, 64), n_images=2000, cond_maps=8)
    pairs = world.generate(world.WorldConfig(), cfg.n_images, seed=0, split="bench")
    emb = torch.nn.functional.normalize(torch.randn(cfg.n_images, 64), dim=1)

    def real(steps):
        return _seconds(lambda: decoder.train_decoder(pairs.images, emb, dataclasses.replace(cfg, steps=steps),
                                                      progress=False))

    def floor(steps):
        model = decoder.EmbeddingDecoder(64, cfg)
        x0 = decoder.to_pixels(pairs.images[:cfg.batch_size], cfg.resolution)
        t = torch.randint(0, cfg.train_timesteps, (cfg.batch_size,))
        e = emb[:cfg.batch_size]
        return _bare(model, lambda: torch.nn.functional.mse_loss(model(x0, t, e), x0), steps)
    return real, floor


def reader_loop():
    cfg = reader.ReaderConfig(n_images=2000)

    def real(steps):
        return _seconds(lambda: reader.train_reader(dataclasses.replace(cfg, steps=steps), progress=False))

    def floor(steps):
        model = reader.FactorReader(cfg)
        pairs = world.generate(world.WorldConfig(), cfg.batch_size, seed=0, split="bench")
        x = reader.to_pixels(pairs.images, cfg.resolution)
        y = {f: torch.tensor(pairs.factors[f].cat.codes.to_numpy(), dtype=torch.long) for f in cfg.factors}

        def loss():
            out = model(x)
            return sum(torch.nn.functional.cross_entropy(out[f], y[f]) for f in cfg.factors)
        return _bare(model, loss, steps)
    return real, floor


def vlm_loop(n_pairs: int = 2000):
    clip = models.create_clip("mdsgap-small", "", seed=0)
    vocab = vlm.Vocab.from_world()
    pairs = world.generate(world.WorldConfig(), n_pairs, seed=0, split="bench")
    patches = vlm.patch_tokens(clip, pairs.images)
    cfg = vlm.VLMConfig(d_model=64, n_layers=4, max_len=patches.shape[1] + vlm.RecipeConfig.max_text)

    def real(steps):
        recipe = vlm.RecipeConfig(lm_steps=0, align_steps=0, tune_steps=steps)
        return _seconds(lambda: vlm.train(vlm.AdapterVLM(len(vocab), patches.shape[-1], cfg), vocab, patches,
                                          pairs.captions, pairs.factors, recipe, progress=False))

    def floor(steps):
        model = vlm.AdapterVLM(len(vocab), patches.shape[-1], cfg)
        recipe = vlm.RecipeConfig()
        g = torch.Generator().manual_seed(0)
        idx = torch.arange(recipe.batch_size)
        texts = vlm.question_texts(pairs.factors.iloc[idx.numpy()].reset_index(drop=True),
                                   [pairs.captions[i] for i in idx.tolist()], g, recipe.context_share)
        ids = vocab.batch(texts, recipe.max_text)
        mask, vis = vlm.answer_mask(ids, vocab), patches[idx]
        return _bare(model, lambda: vlm_model._loss(model, vis, ids, mask), steps)
    return real, floor


LOOPS = {
    "subject CLIP (ch. 1-4, 7-10)": lambda: clip_loop(experiment.ExperimentConfig().train_config()),
    "sweep CLIP (ch. 5, 6, 8)": lambda: clip_loop(training.SweepConfig().base(0)),
    "SAE (ch. 2-4, 7, 8, 10)": sae_loop,
    "decoder (ch. 10)": decoder_loop,
    "reader (ch. 10)": reader_loop,
    "VLM tuning (ch. 9)": vlm_loop,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40, help="N: the loops run N and 2N steps, the floor N")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--only", nargs="*", help="loops whose name contains one of these words")
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, N = {args.steps}")
    print(f"{'loop':30s} {'threads':>7s} {'setup s':>8s} {'loop ms/step':>13s} {'floor ms/step':>14s} "
          f"{'ratio':>6s}")
    for name, make in LOOPS.items():
        if args.only and not any(w.lower() in name.lower() for w in args.only):
            continue
        real, floor = make()
        for threads in args.threads:
            torch.set_num_threads(threads)
            t1, t2 = real(args.steps), real(2 * args.steps)
            step = max(t2 - t1, 1e-9) / args.steps
            base = floor(args.steps)
            print(f"{name:30s} {threads:7d} {t1 - args.steps * step:8.2f} {1e3 * step:13.1f} {1e3 * base:14.1f} "
                  f"{step / base:6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
