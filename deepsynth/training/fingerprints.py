"""What a training run computes, as fingerprints: a resumed run must match its checkpoint's.

The config fingerprint is the TrainerConfig without the fields that only say where things go or
how often to log and save; the dataset fingerprint is the content hash of a rendered dataset. Both
key the folder where a pipeline step keeps its checkpoints, so a rerun of the same training finds them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from deepsynth.configuration import flatten
from deepsynth.integrity import sha256_file
from deepsynth.paths import deepsynth_home
from deepsynth.training.checkpointing import list_checkpoints

logger = logging.getLogger(__name__)

# TrainerConfig fields that do not change what a resumed run computes: where things go, how
# often to log or save, how to resume, and the cache. Every other field is part of the fingerprint.
FINGERPRINT_EXCLUDED = frozenset(
    {
        "output_dir",
        "state_dir",
        "deepsynth_home",
        "device",
        "resume_from_checkpoint",
        "resume_force",
        "save_steps",
        "save_total_limit",
        "logging_steps",
        "progress_bar",
        "peak_tflops",
        "feature_cache",
        "feature_cache_dir",
        "distributed_timeout_s",
    }
)


def config_fingerprint(config: Any) -> dict[str, Any]:
    """The fields of a TrainerConfig (or its dict) that a resumed run must share with the checkpoint.

    A section's fields appear as ``optimizer.learning_rate``, so a difference names the setting.
    """
    data = config if isinstance(config, dict) else config.to_dict()
    return dict(sorted(flatten({k: v for k, v in data.items() if k not in FINGERPRINT_EXCLUDED}).items()))


def resumable_state_dir(home: str | os.PathLike, config: Any, dataset_path: str | os.PathLike) -> Path:
    """A folder for a run's checkpoints outside its output folder, keyed by what the run computes.

    Orchestrators delete a failed step's outputs, checkpoints included; a folder keyed by the
    config and dataset fingerprint survives, and a rerun of the same training finds it again.
    """
    key = {"config": config_fingerprint(config), "dataset": dataset_fingerprint(dataset_path)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(home) / "training-state" / digest


def with_resumable_state(config: Any, dataset_path: str | os.PathLike) -> Any:
    """``config`` with its checkpoints under :func:`resumable_state_dir`, resuming if some are there.

    For runners whose output folder does not survive a failure (a pipeline step): rerunning the
    same training finds the checkpoints an interrupted run left, and the fingerprint check still
    guards the resume.
    """
    state_dir = resumable_state_dir(deepsynth_home(config.deepsynth_home), config, dataset_path)
    resume = config.resume_from_checkpoint
    if resume is None and list_checkpoints(state_dir):
        logger.info("resuming the interrupted training of this config and dataset from %s", state_dir)
        resume = "latest"
    return dataclasses.replace(config, state_dir=str(state_dir), resume_from_checkpoint=resume)


def dataset_fingerprint(path: str | os.PathLike) -> str:
    """Content hash of a rendered dataset folder: its manifest and every shard it lists (sha256).

    Hashing reads the whole dataset, so the result is kept for as long as no file's size or
    modification time changes (a pipeline step and the trainer both ask for it).
    """
    root = Path(path).resolve()
    manifest_path = root / "manifest.json"
    files = [manifest_path] + [root / shard for shard in json.loads(manifest_path.read_text()).get("shards", [])]
    stats = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _hash_dataset_files(stats)


@functools.lru_cache(maxsize=16)
def _hash_dataset_files(stats: tuple[tuple[str, int, int], ...]) -> str:
    manifest, *shards = (Path(name) for name, _, _ in stats)
    digest = hashlib.sha256(manifest.read_bytes())
    for shard in shards:
        digest.update(f"\0{shard.relative_to(manifest.parent)}\0{sha256_file(shard)}".encode())
    return digest.hexdigest()
