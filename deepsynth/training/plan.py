"""The plan of a training run: what each optimizer step trains on, at what learning rate, and counted how.

Each rank's data order per epoch, the micro-batches of each optimizer step, the learning-rate
schedule, and the counters of the steps a process runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from deepsynth.training.config import TrainerConfig
from deepsynth.training.distributed import DistContext


def epoch_order(n: int, seed: int, epoch: int, rank: int, world: int) -> list[int]:
    """This rank's example order for an epoch: a seeded shuffle, padded to a multiple of the world size."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()
    total = math.ceil(n / world) * world
    perm = (perm * math.ceil(total / n))[:total]
    return perm[rank:total:world]


def step_groups(n_docs: int, config: TrainerConfig, epoch: int, ctx: DistContext) -> list[list[list[int]]]:
    """This rank's optimizer steps of an epoch: each a list of micro-batches of document indices."""
    order = epoch_order(n_docs, config.seed, epoch, ctx.rank, ctx.world_size)
    micro = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    accumulate = config.gradient_accumulation_steps
    return [micro[i : i + accumulate] for i in range(0, len(micro), accumulate)]


def step_target_counts(targets: list[int], config: TrainerConfig, epoch: int, world_size: int) -> list[int]:
    """Predicted positions of each optimizer step of an epoch, summed over every rank's micro-batches.

    Each rank computes it alone (the data order is deterministic), so the loss can be normalised by
    the whole step's target count: N processes then compute the same gradient as one process with
    the same global batch.

    Args:
        targets: Predicted (labelled) positions of each document.
    """
    totals: list[int] = []
    for rank in range(world_size):
        groups = step_groups(len(targets), config, epoch, DistContext(rank=rank, world_size=world_size))
        for step, group in enumerate(groups):
            count = sum(targets[i] for micro in group for i in micro)
            if step < len(totals):
                totals[step] += count
            else:
                totals.append(count)
    return totals


@dataclass
class Progress:
    """Counters of the optimizer steps this process runs (a resumed run counts from where it resumed)."""

    global_step: int
    samples: int = 0
    tokens: int = 0
    start: float = field(default_factory=time.perf_counter)
    runtime: float = 0.0
    epochs: list[dict[str, Any]] = field(default_factory=list)  # per epoch: steps, seconds, tokens, model FLOPs

    def record_step(self, samples: int, tokens: int) -> None:
        self.global_step += 1
        self.samples += samples
        self.tokens += tokens

    def samples_per_second(self) -> float:
        return self.samples / max(time.perf_counter() - self.start, 1e-9)

    def epoch_started(self, model_flops: float) -> tuple[float, int, float]:
        return time.perf_counter(), self.tokens, model_flops

    def epoch_finished(self, epoch: int, steps: int, started: tuple[float, int, float], model_flops: float) -> None:
        began, tokens, flops = started
        self.epochs.append(
            {
                "epoch": epoch,
                "steps": steps,
                "seconds": time.perf_counter() - began,
                "tokens": self.tokens - tokens,
                "model_flops": model_flops - flops,
            }
        )


def lr_lambda(kind: str, warmup: int, total: int):
    """Multiplier of the peak learning rate at a step: linear warm-up, then linear/cosine decay or constant."""

    def schedule(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 1.0 - progress if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))

    return schedule
