"""World generation throughput against the 5,000 pairs/s target (issue: the synthetic world).

    .venv/bin/python benchmarks/world_throughput.py [--n 20000] [--repeats 3]

Prints pairs per second (best of the repeats) for the default 32x32 world and a 64x64 one, and the
ratio to the target. Run it on the machine you care about: it is a measurement, not a test.
"""
import argparse
import time

from mdsgap import world

TARGET = 5_000


def best_rate(cfg: world.WorldConfig, n: int, repeats: int) -> float:
    world.generate(cfg, 256)  # warm up numpy's allocations
    best = float("inf")
    for r in range(repeats):
        t = time.perf_counter()
        world.generate(cfg, n, seed=r)
        best = min(best, time.perf_counter() - t)
    return n / best


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    for res in (32, 64):
        rate = best_rate(world.WorldConfig(resolution=res), args.n, args.repeats)
        print(f"{res}x{res}: {rate:8.0f} pairs/s   ratio to target {TARGET}: {rate / TARGET:.2f}")
