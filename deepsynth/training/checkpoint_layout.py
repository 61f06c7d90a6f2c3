"""Where a run's checkpoints live and what they are named; torn and corrupt folders are cleared away.

``<output_dir>/checkpoints/checkpoint-<step>`` is a complete checkpoint once its index
(:data:`INDEX`) exists; ``.tmp-checkpoint-<step>-<pid>`` is one being written (torn if its writer
died); ``corrupt-checkpoint-<step>`` is one that failed verification, kept for inspection. Only
rank 0 changes the folder; other ranks read it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from deepsynth.env import process_alive, rank
from deepsynth.errors import DeepSynthError

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
#: Every file a checkpoint holds besides its index, in the order they are written.
PARTS = (WEIGHTS, OPTIMIZER_TENSORS, OPTIMIZER_META, RNG_TENSORS, STATE)


class CheckpointError(DeepSynthError):
    """Checkpoints exist but none can be resumed from (all incomplete or corrupt), or a named one is bad."""


def checkpoints_dir(output_dir: str | os.PathLike) -> Path:
    """Folder holding a run's checkpoints."""
    return Path(output_dir) / "checkpoints"


def step_name(step: int) -> str:
    """The folder name of the checkpoint after ``step`` optimizer steps."""
    return f"checkpoint-{step:08d}"


def tmp_name(step: int) -> str:
    """The folder name this process writes ``step``'s checkpoint under before renaming it."""
    return f".tmp-{step_name(step)}-{os.getpid()}"


def step_dirs(output_dir: str | os.PathLike) -> list[Path]:
    """Every ``checkpoint-<step>`` folder (complete or not), oldest first."""
    root = checkpoints_dir(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := CHECKPOINT_RE.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints of a run that carry an index (finished writing), oldest first.

    This is a cheap listing; :func:`deepsynth.training.checkpoint_io.verify_checkpoint` checks the
    files against the index.
    """
    return [p for p in step_dirs(output_dir) if (p / INDEX).is_file()]


def read_index(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's index (files, step, fingerprint)."""
    return json.loads((Path(path) / INDEX).read_text())


def is_main_rank() -> bool:
    """Only rank 0 changes the checkpoints folder (every rank resolves the same checkpoint read-only)."""
    return rank() == 0


def cleanup_torn(output_dir: str | os.PathLike) -> list[Path]:
    """Delete half-written ``.tmp-checkpoint-*`` folders whose writer is gone; returns what was deleted."""
    root = checkpoints_dir(output_dir)
    removed: list[Path] = []
    if not root.is_dir() or not is_main_rank():
        return removed
    for p in sorted(root.iterdir()):
        m = TMP_RE.match(p.name)
        if m and not process_alive(int(m.group(2))):
            logger.warning("removing torn checkpoint %s (its writer, pid %s, died while writing it)", p, m.group(2))
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def move_aside(path: Path) -> Path:
    """Rename a checkpoint that failed verification to ``corrupt-<name>`` (rank 0 only); returns where it is."""
    target = path.with_name("corrupt-" + path.name)
    if not is_main_rank():
        return path  # rank 0 moves it; this rank only skips it
    shutil.rmtree(target, ignore_errors=True)
    try:
        path.rename(target)
    except FileNotFoundError:  # already moved
        pass
    return target


def prune(output_dir: str | os.PathLike, keep: int) -> None:
    """Delete the oldest complete checkpoints beyond the newest ``keep``."""
    for old in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
