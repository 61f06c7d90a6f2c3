"""Runs this machine started and never saw end (``kill -9``, a power cut): found and closed on the next start.

While a run goes, ``<home>/runs/<run name>.json`` holds the process id that started it; the
file is removed when the run returns or raises. A file whose process is gone belongs to an
interrupted run: the next start marks that run and its unfinished steps failed in ZenML and
deletes the folders those steps had begun writing in the local artifact store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepsynth.env import process_alive
from deepsynth.paths import deepsynth_home

logger = logging.getLogger(__name__)


def runs_dir() -> Path:
    """Where the records of running runs live."""
    return deepsynth_home() / "runs"


@contextlib.contextmanager
def recorded_run(run_name: str) -> Iterator[None]:
    """Record ``run_name`` as started by this process until the block ends (however it ends)."""
    folder = runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_name}.json"
    path.write_text(
        json.dumps(
            {
                "run_name": run_name,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
    )
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _partial_outputs(artifact_store: Path, step_name: str, step_run_id: Any) -> list[Path]:
    """Folders a step run had begun writing: ``<store>/<step>/<output>/<step run id>`` (ZenML's layout)."""
    return sorted(p for p in (artifact_store / step_name).glob(f"*/{step_run_id}") if p.is_dir())


def close_interrupted_runs(client: Any) -> list[dict[str, Any]]:
    """Mark failed every run recorded here whose process is gone, and delete its unfinished steps' outputs.

    Args:
        client: A ZenML client on the store the runs were recorded against.

    Returns:
        One entry per closed run: name, id, the process that was lost and the removed folders.
    """
    from zenml.enums import ExecutionStatus
    from zenml.models import PipelineRunUpdate, StepRunUpdate
    from zenml.utils.time_utils import utc_now

    closed = []
    store_path = client.active_stack.artifact_store.path
    artifact_store = Path(store_path) if "://" not in store_path else None
    for path in sorted(runs_dir().glob("*.json")) if runs_dir().is_dir() else []:
        record = json.loads(path.read_text())
        if record.get("host") != socket.gethostname() or process_alive(int(record["pid"])):
            continue
        try:
            run = client.get_pipeline_run(record["run_name"])
        except KeyError:  # killed before ZenML created the run
            path.unlink(missing_ok=True)
            continue
        if not ExecutionStatus(run.status).is_finished:
            removed: list[Path] = []
            for step in run.steps.values():
                if ExecutionStatus(step.status).is_finished:
                    continue
                if artifact_store is not None:
                    removed += _partial_outputs(artifact_store, step.name, step.id)
                client.zen_store.update_run_step(
                    step.id, StepRunUpdate(status=ExecutionStatus.FAILED, end_time=utc_now())
                )
            for folder in removed:
                shutil.rmtree(folder, ignore_errors=True)
            reason = f"interrupted: process {record['pid']} ended without finishing the run"
            client.zen_store.update_run(run.id, PipelineRunUpdate(status=ExecutionStatus.FAILED, status_reason=reason))
            closed.append(
                {
                    "run_name": run.name,
                    "run_id": str(run.id),
                    "pid": record["pid"],
                    "removed": [str(p) for p in removed],
                }
            )
            logger.warning(
                "run %s (%s) was %s: marked failed; removed %d partial output folder(s)",
                run.name,
                run.id,
                reason,
                len(removed),
            )
        path.unlink(missing_ok=True)
    return closed
