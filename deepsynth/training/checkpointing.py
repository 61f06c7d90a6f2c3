"""Atomic, pickle-free, verified training checkpoints.

A checkpoint is a directory ``checkpoint-<step>`` holding the trainable weights, the optimizer's
tensors (safetensors) with its structure (JSON), the scheduler state, the RNG states and the data
position, plus ``checkpoint_index.json``: the sha256 and size of every other file and the run's
fingerprint (the training-relevant config fields and the dataset's content hash). The index is
written last, everything is fsynced, and the folder is written under ``.tmp-checkpoint-<step>-<pid>``
and renamed when complete.

Faults and what happens (see RELIABILITY.md):

- ``kill -9`` while writing leaves a ``.tmp-checkpoint-*`` folder: it is never read, and it is
  deleted the next time checkpoints are listed for resuming or written (unless its writer is alive).
- A ``checkpoint-<step>`` whose index is missing, or whose files are missing, truncated or altered,
  is *not complete*: ``resume_from_checkpoint: latest`` logs a warning naming the file and the
  problem, moves the folder aside to ``corrupt-checkpoint-<step>`` (kept for inspection, never read)
  and falls back to the previous complete checkpoint. If checkpoints existed but none is complete,
  :class:`CheckpointError` is raised: training never silently restarts from step 0.
  An explicitly named checkpoint that fails verification is an error (no fallback).
- A resume whose config or dataset fingerprint (:mod:`deepsynth.training.fingerprints`) differs
  from the checkpoint's raises :class:`~deepsynth.errors.ConfigError` naming what changed, unless
  ``resume_force`` is set (then a warning is logged).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from deepsynth.errors import ConfigError, DeepSynthError
from deepsynth.integrity import IntegrityError, atomic_directory, check_tree, hash_tree

logger = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TMP_RE = re.compile(r"^\.tmp-checkpoint-(\d+)-(\d+)$")
WEIGHTS = "trainable.safetensors"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_META = "optimizer.json"
RNG_TENSORS = "rng.safetensors"
STATE = "trainer_state.json"
INDEX = "checkpoint_index.json"
INDEX_FORMAT = 1
# Fault-injection hook for tests: seconds to sleep after each file written into a checkpoint, so a
# test can kill -9 the process while a checkpoint is half written. Unset (0) in normal use.
WRITE_DELAY_ENV = "DEEPSYNTH_CHECKPOINT_WRITE_DELAY_S"

class CheckpointError(DeepSynthError):
    """Checkpoints exist but none can be resumed from (all incomplete or corrupt), or a named one is bad."""


def checkpoints_dir(output_dir: str | os.PathLike) -> Path:
    """Folder holding a run's checkpoints."""
    return Path(output_dir) / "checkpoints"


def _step_dirs(output_dir: str | os.PathLike) -> list[Path]:
    root = checkpoints_dir(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := CHECKPOINT_RE.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints of a run that carry an index (finished writing), oldest first.

    This is a cheap listing; :func:`verify_checkpoint` checks the files against the index.
    """
    return [p for p in _step_dirs(output_dir) if (p / INDEX).is_file()]


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_main_rank() -> bool:
    """Only rank 0 changes the checkpoints folder (every rank resolves the same checkpoint read-only)."""
    return int(os.environ.get("RANK", "0")) == 0


def cleanup_torn(output_dir: str | os.PathLike) -> list[Path]:
    """Delete half-written ``.tmp-checkpoint-*`` folders whose writer is gone; returns what was deleted."""
    root = checkpoints_dir(output_dir)
    removed: list[Path] = []
    if not root.is_dir() or not _is_main_rank():
        return removed
    for p in sorted(root.iterdir()):
        m = TMP_RE.match(p.name)
        if m and not _pid_alive(int(m.group(2))):
            logger.warning("removing torn checkpoint %s (its writer, pid %s, died while writing it)", p, m.group(2))
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


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
    for name in (WEIGHTS, OPTIMIZER_TENSORS, OPTIMIZER_META, RNG_TENSORS, STATE):
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


def read_index(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's index (files, step, fingerprint)."""
    return json.loads((Path(path) / INDEX).read_text())


def check_fingerprint(path: str | os.PathLike, fingerprint: dict[str, Any] | None, force: bool = False) -> None:
    """Refuse (ConfigError) to resume from ``path`` if the config or dataset changed, unless ``force``."""
    if fingerprint is None:
        return
    saved = read_index(path).get("fingerprint")
    if saved is None:
        problems = ["the checkpoint records no config/dataset fingerprint"]
    else:
        problems = []
        old_cfg, new_cfg = saved.get("config") or {}, fingerprint.get("config") or {}
        for key in sorted(set(old_cfg) | set(new_cfg)):
            if old_cfg.get(key) != new_cfg.get(key):
                problems.append(f"{key}: {old_cfg.get(key)!r} → {new_cfg.get(key)!r}")
        if saved.get("dataset") != fingerprint.get("dataset"):
            problems.append(f"dataset content hash: {str(saved.get('dataset'))[:12]} → {str(fingerprint.get('dataset'))[:12]}")
    if not problems:
        return
    message = f"{path}: the run changed since this checkpoint was written: " + "; ".join(problems)
    if force:
        logger.warning("%s; resuming anyway because resume_force is set", message)
        return
    raise ConfigError(message + ". Resume with the original config and data, set resume_from_checkpoint to null "
                      "to start over, or set resume_force: true to resume anyway")


def _move_aside(path: Path) -> Path:
    target = path.with_name("corrupt-" + path.name)
    if not _is_main_rank():
        return path  # rank 0 moves it; this rank only skips it
    shutil.rmtree(target, ignore_errors=True)
    try:
        path.rename(target)
    except FileNotFoundError:  # already moved
        pass
    return target


def resolve_checkpoint(
    output_dir: str | os.PathLike,
    spec: str | None,
    fingerprint: dict[str, Any] | None = None,
    force: bool = False,
) -> Path | None:
    """Turn ``resume_from_checkpoint`` (``latest``, a path, or ``None``) into a verified directory.

    Torn temp folders are cleaned up first. ``latest`` returns the newest *complete* checkpoint,
    falling back (with a warning) past incomplete or corrupt ones; ``latest`` with no checkpoint
    at all means a fresh start. An explicit path must verify.

    Args:
        output_dir: The run's output directory.
        spec: ``latest``, a checkpoint directory, or None/empty (no resume).
        fingerprint: ``{"config": config_fingerprint(cfg), "dataset": dataset_fingerprint(path)}``
            of the run about to resume; compared with the checkpoint's (None: not checked).
        force: Resume even if the fingerprint differs (a warning is logged).

    Raises:
        CheckpointError: Checkpoints exist but none is complete, or the named one is incomplete.
        ConfigError: The config or dataset changed since the checkpoint and ``force`` is off.
    """
    cleanup_torn(output_dir)
    if not spec:
        return None
    if spec != "latest":
        path = Path(spec)
        problem = verify_checkpoint(path) if path.is_dir() else "no such directory"
        if problem:
            raise CheckpointError(f"resume_from_checkpoint: {path} is not a complete checkpoint: {problem}")
        check_fingerprint(path, fingerprint, force)
        return path
    candidates = _step_dirs(output_dir)
    rejected = []
    for path in reversed(candidates):
        problem = verify_checkpoint(path)
        if problem is None:
            if rejected:
                logger.warning("resuming from %s, the newest complete checkpoint, instead of: %s", path.name, "; ".join(rejected))
            check_fingerprint(path, fingerprint, force)
            return path
        moved = _move_aside(path)
        logger.warning("checkpoint %s is not usable: %s; moved it to %s and falling back to the previous one", path, problem, moved)
        rejected.append(f"{path.name} ({problem})")
    if rejected:
        raise CheckpointError(
            f"{checkpoints_dir(output_dir)}: no complete checkpoint to resume from ("
            + "; ".join(rejected) + "). Refusing to restart from step 0 silently: delete the checkpoints "
            "folder, or set resume_from_checkpoint to null, to start over")
    return None


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
        fingerprint: The run's config/dataset fingerprint, checked when resuming (see :func:`resolve_checkpoint`).

    Returns:
        The checkpoint directory.
    """
    root = checkpoints_dir(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    cleanup_torn(output_dir)
    final = root / f"checkpoint-{step:08d}"
    delay = float(os.environ.get(WRITE_DELAY_ENV) or 0)

    def written() -> None:
        if delay:
            time.sleep(delay)

    with atomic_directory(final, tmp_name=f".tmp-checkpoint-{step:08d}-{os.getpid()}") as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in trainable.items()}, str(tmp / WEIGHTS))
        written()
        opt_tensors, opt_meta = _optimizer_to_safe(optimizer)
        save_file(opt_tensors, str(tmp / OPTIMIZER_TENSORS))
        written()
        (tmp / OPTIMIZER_META).write_text(json.dumps(opt_meta))
        written()
        rng_tensors, rng_meta = _rng_state()
        save_file(rng_tensors, str(tmp / RNG_TENSORS))
        written()
        sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
        full_state = {**state, "global_step": step, "scheduler": sched, "rng": rng_meta}
        (tmp / STATE).write_text(json.dumps(full_state, indent=1))
        written()
        index = {"format": INDEX_FORMAT, "step": step, "files": hash_tree(tmp, with_size=True), "fingerprint": fingerprint}
        # written last: marks completeness
        (tmp / INDEX).write_text(json.dumps(index, indent=1, sort_keys=True, default=str))
    for old in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
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
        CheckpointError: The checkpoint is incomplete or a file does not match the index.
    """
    path = Path(path)
    problem = verify_checkpoint(path)
    if problem:
        raise CheckpointError(f"{path}: not a complete checkpoint: {problem}")
    state = json.loads((path / STATE).read_text())
    optimizer.load_state_dict(
        _optimizer_from_safe(load_file(str(path / OPTIMIZER_TENSORS)), json.loads((path / OPTIMIZER_META).read_text()))
    )
    sched = scheduler.state_dict()
    sched.update(state["scheduler"])
    scheduler.load_state_dict(sched)
    _set_rng_state(load_file(str(path / RNG_TENSORS)), state["rng"])
    return load_file(str(path / WEIGHTS)), state
