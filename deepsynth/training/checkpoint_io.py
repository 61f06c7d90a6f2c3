"""Write a checkpoint atomically, verify one against its index, and read one back.

The files are written under a temporary name, the index (sha256 and size of every file, and the
run's fingerprint) last, and the folder is renamed when complete (:func:`deepsynth.integrity.atomic_directory`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from deepsynth.integrity import IntegrityError, atomic_directory, check_tree, hash_tree
from deepsynth.training.checkpoint_codecs import optimizer_from_safe, optimizer_to_safe, rng_state, set_rng_state
from deepsynth.training.checkpoint_layout import (
    INDEX,
    INDEX_FORMAT,
    OPTIMIZER_META,
    OPTIMIZER_TENSORS,
    PARTS,
    RNG_TENSORS,
    STATE,
    WEIGHTS,
    CheckpointError,
    checkpoints_dir,
    cleanup_torn,
    prune,
    step_name,
    tmp_name,
)

#: Fault-injection hook for tests: seconds to sleep after each file written into a checkpoint, so a
#: test can kill -9 the process while a checkpoint is half written. Unset (0) in normal use.
WRITE_DELAY_ENV = "DEEPSYNTH_CHECKPOINT_WRITE_DELAY_S"


def _after_each_file() -> Callable[[], None]:
    """The pause after each file written (the fault hook; a no-op unless :data:`WRITE_DELAY_ENV` is set)."""
    delay = float(os.environ.get(WRITE_DELAY_ENV) or 0)
    return (lambda: time.sleep(delay)) if delay else (lambda: None)


def verify_checkpoint(path: str | os.PathLike) -> str | None:
    """None if the checkpoint is complete and intact, else what is wrong (naming the file)."""
    path = Path(path)
    index_path = path / INDEX
    if not index_path.is_file():
        return f"{INDEX} is missing (the checkpoint was never completed)"
    try:
        index = json.loads(index_path.read_text())
        files = index["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"{INDEX} is unreadable ({exc})"
    for name in PARTS:
        if name not in files:
            return f"{INDEX} does not list {name}"
    try:
        problem = check_tree(path, files, skip={INDEX}, with_size=True).first(ignore_extra=True)
    except IntegrityError as exc:
        return str(exc)
    if problem is None:
        return None
    name, kind = problem
    if kind == "missing":
        return f"{name} is missing"
    size = (path / name).stat().st_size
    if size != files[name]["size"]:
        return f"{name} is {size} bytes, the index says {files[name]['size']} (truncated or altered)"
    return f"{name} does not match its sha256 in {INDEX} (corrupt or altered)"


def save_checkpoint(
    output_dir: str | os.PathLike,
    step: int,
    trainable: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: dict[str, Any],
    keep: int,
    fingerprint: dict[str, Any] | None = None,
) -> Path:
    """Write ``checkpoint-<step>`` atomically (index written last) and prune the oldest beyond ``keep``.

    Args:
        output_dir: The run's output directory.
        step: Optimizer steps done.
        trainable: Trainable tensors by name.
        optimizer: The optimizer (state saved as tensors + JSON structure).
        scheduler: The LR scheduler (its state dict is JSON).
        state: Data position, loss history and anything else JSON-serialisable.
        keep: Checkpoints to keep.
        fingerprint: The run's config/dataset fingerprint, checked when resuming.

    Returns:
        The checkpoint directory.
    """
    root = checkpoints_dir(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    cleanup_torn(output_dir)
    final = root / step_name(step)
    opt_tensors, opt_meta = optimizer_to_safe(optimizer)
    rng_tensors, rng_meta = rng_state()
    sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    full_state = {**state, "global_step": step, "scheduler": sched, "rng": rng_meta}
    writers: dict[str, Callable[[Path], Any]] = {
        WEIGHTS: lambda p: save_file({k: v.detach().contiguous().cpu() for k, v in trainable.items()}, str(p)),
        OPTIMIZER_TENSORS: lambda p: save_file(opt_tensors, str(p)),
        OPTIMIZER_META: lambda p: p.write_text(json.dumps(opt_meta)),
        RNG_TENSORS: lambda p: save_file(rng_tensors, str(p)),
        STATE: lambda p: p.write_text(json.dumps(full_state, indent=1)),
    }
    pause = _after_each_file()
    with atomic_directory(final, tmp_name=tmp_name(step)) as tmp:
        for name in PARTS:
            writers[name](tmp / name)
            pause()
        files = hash_tree(tmp, with_size=True)
        index = {"format": INDEX_FORMAT, "step": step, "files": files, "fingerprint": fingerprint}
        # written last: marks completeness
        (tmp / INDEX).write_text(json.dumps(index, indent=1, sort_keys=True, default=str))
    prune(output_dir, keep)
    return final


def load_checkpoint(
    path: str | os.PathLike,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore optimizer, scheduler and RNG states from a checkpoint (verified against its index first).

    Args:
        path: A checkpoint directory.
        optimizer: Optimizer built over the same parameters in the same order.
        scheduler: The scheduler to restore.

    Returns:
        ``(trainable_tensors, state)``; the caller copies the tensors into its parameters.

    Raises:
        CheckpointError: The checkpoint is incomplete, a file does not match the index, or a tensor file
            is not valid safetensors.
    """
    path = Path(path)
    problem = verify_checkpoint(path)
    if problem:
        raise CheckpointError(f"{path}: not a complete checkpoint: {problem}")
    state = json.loads((path / STATE).read_text())
    # every tensor file is read before any state is restored: a bad one changes nothing
    try:
        weights, optimizer_tensors, rng_tensors = (
            load_file(str(path / name)) for name in (WEIGHTS, OPTIMIZER_TENSORS, RNG_TENSORS)
        )
    except SafetensorError as exc:
        raise CheckpointError(f"{path}: a tensor file is not valid safetensors: {exc}") from exc
    optimizer.load_state_dict(optimizer_from_safe(optimizer_tensors, json.loads((path / OPTIMIZER_META).read_text())))
    sched = scheduler.state_dict()
    sched.update(state["scheduler"])
    scheduler.load_state_dict(sched)
    set_rng_state(rng_tensors, state["rng"])
    return weights, state
