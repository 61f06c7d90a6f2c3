"""Atomic, pickle-free, verified training checkpoints, and the policy that picks one to resume from.

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

This module is the resume policy (:func:`resolve_checkpoint`); the folder layout and torn-write
cleanup are in :mod:`~deepsynth.training.checkpoint_layout`, writing, verifying and reading in
:mod:`~deepsynth.training.checkpoint_io`, the optimizer and RNG codecs in
:mod:`~deepsynth.training.checkpoint_codecs`. The trainer and :mod:`~deepsynth.training.fingerprints`
import the checkpoint API from here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from deepsynth.errors import ConfigError
from deepsynth.training.checkpoint_io import load_checkpoint, save_checkpoint, verify_checkpoint
from deepsynth.training.checkpoint_layout import (
    INDEX,
    CheckpointError,
    checkpoints_dir,
    cleanup_torn,
    list_checkpoints,
    move_aside,
    read_index,
    step_dirs,
)

#: The checkpoint API the trainer, fingerprints and tests use (defined in the modules named above).
__all__ = [
    "INDEX",
    "CheckpointError",
    "check_fingerprint",
    "list_checkpoints",
    "load_checkpoint",
    "read_index",
    "resolve_checkpoint",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)


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
            before, after = str(saved.get("dataset"))[:12], str(fingerprint.get("dataset"))[:12]
            problems.append(f"dataset content hash: {before} → {after}")
    if not problems:
        return
    message = f"{path}: the run changed since this checkpoint was written: " + "; ".join(problems)
    if force:
        logger.warning("%s; resuming anyway because resume_force is set", message)
        return
    raise ConfigError(
        message + ". Resume with the original config and data, set resume_from_checkpoint to null "
        "to start over, or set resume_force: true to resume anyway"
    )


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
    candidates = step_dirs(output_dir)
    rejected = []
    for path in reversed(candidates):
        problem = verify_checkpoint(path)
        if problem is None:
            if rejected:
                logger.warning(
                    "resuming from %s, the newest complete checkpoint, instead of: %s", path.name, "; ".join(rejected)
                )
            check_fingerprint(path, fingerprint, force)
            return path
        moved = move_aside(path)
        logger.warning(
            "checkpoint %s is not usable: %s; moved it to %s and falling back to the previous one", path, problem, moved
        )
        rejected.append(f"{path.name} ({problem})")
    if rejected:
        raise CheckpointError(
            f"{checkpoints_dir(output_dir)}: no complete checkpoint to resume from ("
            + "; ".join(rejected)
            + "). Refusing to restart from step 0 silently: delete the checkpoints "
            "folder, or set resume_from_checkpoint to null, to start over"
        )
    return None
