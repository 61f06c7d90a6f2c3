"""Data-parallel helpers over torch.distributed (gloo on CPU, NCCL on GPU).

Launch with ``torchrun`` or ``accelerate launch`` (both set RANK / WORLD_SIZE / MASTER_ADDR); a plain
``python`` run is a world of one. Gradients of the trainable parameters are averaged explicitly
after backward, so parameters that get no gradient on some rank (unrouted MoE experts) need no
special handling, and all ranks apply identical updates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """This process's place in the data-parallel world."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        """Only the main process logs and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def init_distributed(device_type: str) -> DistContext:
    """Join the process group described by the environment (no-op for a single process).

    Args:
        device_type: ``cpu`` (gloo) or ``cuda`` (nccl).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    created = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo", rank=rank, world_size=world)
        created = True
    return DistContext(rank, world, local, created)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group if this module created it."""
    if ctx.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every rank."""
    if ctx.enabled:
        dist.barrier()


def broadcast_parameters(ctx: DistContext, params: list[torch.nn.Parameter]) -> None:
    """Make every rank start from rank 0's values."""
    if ctx.enabled:
        for p in params:
            dist.broadcast(p.data, src=0)


def average_gradients(ctx: DistContext, params: list[torch.nn.Parameter]) -> None:
    """All-reduce (mean) the gradients of ``params``; a missing gradient counts as zero."""
    if not ctx.enabled:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(ctx.world_size)


def mean_scalar(ctx: DistContext, value: float) -> float:
    """Mean of a float over all ranks."""
    if not ctx.enabled:
        return value
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / ctx.world_size
