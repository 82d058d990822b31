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
    if world > 1 and not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Context(rank, world, device)


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def all_reduce_sum(ctx: Context, t: torch.Tensor) -> torch.Tensor:
    """Sum of `t` over ranks (in place, and returned); `t` itself in one process."""
    if ctx.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


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
