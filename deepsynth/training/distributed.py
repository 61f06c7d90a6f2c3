"""Data-parallel helpers over torch.distributed (gloo on CPU, NCCL on GPU).

Launch with ``torchrun`` or ``accelerate launch`` (both set RANK / WORLD_SIZE / MASTER_ADDR); a plain
``python`` run is a world of one. Gradients of the trainable parameters are averaged explicitly
after backward, so parameters that get no gradient on some rank (unrouted MoE experts) need no
special handling, and all ranks apply identical updates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from deepsynth import env
from deepsynth.errors import DeepSynthError


class RankLostError(DeepSynthError):
    """A collective failed: another rank died, hung past the timeout, or lost its connection."""


@contextlib.contextmanager
def _collective(what: str) -> Iterator[None]:
    """Turn a backend's failure of a collective into one clear :class:`RankLostError`."""
    try:
        yield
    except RuntimeError as exc:  # gloo and NCCL raise RuntimeError (DistBackendError) subclasses
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RankLostError(
            f"{what} failed: another rank died, hung past distributed_timeout_s or lost its connection ({first[:300]})"
        ) from exc


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


def init_distributed(device_type: str, timeout_s: float = 600) -> DistContext:
    """Join the process group described by the environment (no-op for a single process).

    Args:
        device_type: ``cpu`` (gloo) or ``cuda`` (nccl).
        timeout_s: How long a collective waits for the other ranks before it raises: a dead or hung
            rank fails the run instead of hanging it.
    """
    world = env.world_size()
    if world <= 1:
        return DistContext()
    rank, local = env.rank(), env.local_rank()
    created = False
    if not dist.is_initialized():
        with _collective("joining the process group"):
            dist.init_process_group(
                "nccl" if device_type == "cuda" else "gloo",
                rank=rank,
                world_size=world,
                timeout=timedelta(seconds=timeout_s),
            )
        created = True
    return DistContext(rank, world, local, created)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group if this module created it."""
    if ctx.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every rank."""
    if ctx.enabled:
        with _collective("barrier"):
            dist.barrier()


def broadcast_parameters(ctx: DistContext, params: list[torch.nn.Parameter]) -> None:
    """Make every rank start from rank 0's values."""
    if ctx.enabled:
        with _collective("parameter broadcast"):
            for p in params:
                dist.broadcast(p.data, src=0)


def average_gradients(ctx: DistContext, params: list[torch.nn.Parameter]) -> None:
    """All-reduce (mean) the gradients of ``params``; a missing gradient counts as zero."""
    if not ctx.enabled:
        return
    with _collective("gradient all-reduce"):
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
    with _collective("all-reduce"):
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / ctx.world_size
