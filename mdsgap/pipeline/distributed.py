"""One process or many: the rank, world size and reductions a pipeline stage needs, from torchrun's
environment (RANK, WORLD_SIZE, LOCAL_RANK) or, without torchrun, a single process where every collective
is a no-op. gloo on CPU, NCCL on GPUs."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes shared files (manifests, tables, reports)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init(device: str = "auto") -> Context:
    """Join torchrun's process group when launched by it (WORLD_SIZE > 1), else a one-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    elif device == "cuda":
        device = f"cuda:{local}"  # one GPU per rank
    if world > 1 and not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Context(rank, world, device)


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def _movable(ctx: Context, t: torch.Tensor) -> torch.Tensor:
    """`t` where the backend can reduce it: NCCL only reduces GPU tensors, so CPU sums travel via the rank's GPU."""
    return t.to(ctx.device) if ctx.device.startswith("cuda") and t.device.type == "cpu" else t


def all_reduce_sum(ctx: Context, t: torch.Tensor) -> torch.Tensor:
    """Sum of `t` over ranks (in place, and returned); `t` itself in one process."""
    if ctx.distributed:
        moved = _movable(ctx, t)
        dist.all_reduce(moved, op=dist.ReduceOp.SUM)
        if moved is not t:
            t.copy_(moved)
    return t


def all_gather(ctx: Context, t: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's `t` (same shape on each), in rank order, on t's device; [t] in one process."""
    if not ctx.distributed:
        return [t]
    moved = _movable(ctx, t.contiguous())
    out = [torch.empty_like(moved) for _ in range(ctx.world_size)]
    dist.all_gather(out, moved)
    return [o.to(t.device) for o in out]


def broadcast_object(ctx: Context, obj):
    """Rank 0's `obj` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def close(ctx: Context) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()
