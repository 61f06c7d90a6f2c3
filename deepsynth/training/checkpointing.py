"""Atomic, pickle-free training checkpoints.

A checkpoint is a directory ``checkpoint-<step>`` holding the trainable weights, the optimizer's
tensors (safetensors) with its structure (JSON), the scheduler state, the RNG states and the data
position. It is written under a temporary name and renamed when complete, so a crash never leaves
a checkpoint that looks valid; ``latest`` is the highest-numbered complete one.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from deepsynth.errors import DeepSynthError

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
WEIGHTS = "trainable.safetensors"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_META = "optimizer.json"
RNG_TENSORS = "rng.safetensors"
STATE = "trainer_state.json"


def checkpoints_dir(output_dir: str | os.PathLike) -> Path:
    """Folder holding a run's checkpoints."""
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoints_dir(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := CHECKPOINT_RE.match(p.name)) and (p / STATE).is_file()]
    return [p for _, p in sorted(found)]


def resolve_checkpoint(output_dir: str | os.PathLike, spec: str | None) -> Path | None:
    """Turn ``resume_from_checkpoint`` (``latest``, a path, or ``None``) into a directory.

    ``latest`` with no checkpoint yet means a fresh start; an explicit path must exist.
    """
    if not spec:
        return None
    if spec == "latest":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(spec)
    if not (path / STATE).is_file():
        raise DeepSynthError(f"resume_from_checkpoint: {path} is not a complete checkpoint")
    return path


def _optimizer_to_safe(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for index, entries in state["state"].items():
        meta_entry = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value.detach().contiguous().cpu()
                meta_entry[name] = {"tensor": f"{index}.{name}"}
            else:
                meta_entry[name] = {"value": value}
        meta["state"][str(index)] = meta_entry
    return tensors, meta


def _optimizer_from_safe(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state = {}
    for index, entries in meta["state"].items():
        state[int(index)] = {n: tensors[e["tensor"]] if "tensor" in e else e["value"] for n, e in entries.items()}
    return {"state": state, "param_groups": meta["param_groups"]}


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    py = random.getstate()
    meta = {"numpy": [kind, int(pos), int(has_gauss), float(gauss)], "python": [py[0], list(py[1]), py[2]]}
    return tensors, meta


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, gauss_py = meta["python"]
    random.setstate((version, tuple(state), gauss_py))


def save_checkpoint(
    output_dir: str | os.PathLike,
    step: int,
    trainable: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: dict[str, Any],
    keep: int,
) -> Path:
    """Write ``checkpoint-<step>`` atomically and prune the oldest beyond ``keep``.

    Args:
        output_dir: The run's output directory.
        step: Optimizer steps done.
        trainable: Trainable tensors by name.
        optimizer: The optimizer (state saved as tensors + JSON structure).
        scheduler: The LR scheduler (its state dict is JSON).
        state: Data position, loss history and anything else JSON-serialisable.
        keep: Checkpoints to keep.

    Returns:
        The checkpoint directory.
    """
    root = checkpoints_dir(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"checkpoint-{step:08d}"
    tmp = root / f".tmp-checkpoint-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().contiguous().cpu() for k, v in trainable.items()}, str(tmp / WEIGHTS))
    opt_tensors, opt_meta = _optimizer_to_safe(optimizer)
    save_file(opt_tensors, str(tmp / OPTIMIZER_TENSORS))
    (tmp / OPTIMIZER_META).write_text(json.dumps(opt_meta))
    rng_tensors, rng_meta = _rng_state()
    save_file(rng_tensors, str(tmp / RNG_TENSORS))
    sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    full_state = {**state, "global_step": step, "scheduler": sched, "rng": rng_meta}
    (tmp / STATE).write_text(json.dumps(full_state, indent=1))  # written last: marks completeness
    for f in tmp.iterdir():
        with open(f, "rb") as handle:
            os.fsync(handle.fileno())
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    for old in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(
    path: str | os.PathLike,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore optimizer, scheduler and RNG states from a checkpoint.

    Args:
        path: A checkpoint directory.
        optimizer: Optimizer built over the same parameters in the same order.
        scheduler: The scheduler to restore.

    Returns:
        ``(trainable_tensors, state)``; the caller copies the tensors into its parameters.
    """
    path = Path(path)
    state = json.loads((path / STATE).read_text())
    optimizer.load_state_dict(
        _optimizer_from_safe(load_file(str(path / OPTIMIZER_TENSORS)), json.loads((path / OPTIMIZER_META).read_text()))
    )
    sched = scheduler.state_dict()
    sched.update(state["scheduler"])
    scheduler.load_state_dict(sched)
    _set_rng_state(load_file(str(path / RNG_TENSORS)), state["rng"])
    return load_file(str(path / WEIGHTS)), state
