"""Helpers the steps share: where to write folder outputs, and the MLflow run of the stack's tracker."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from zenml import get_step_context


def output_dir(name: str) -> str:
    """A local folder to write output ``name`` into: its artifact URI on a local store, else a temp dir.

    Outside a pipeline run (a step's ``.entrypoint()`` in tests) it is a temp dir too.
    """
    try:
        uri = get_step_context().get_output_artifact_uri(name)
    except RuntimeError:  # no step context: called directly
        uri = "tmp://"
    if "://" in uri:  # remote artifact store: the materializer uploads the folder afterwards
        return tempfile.mkdtemp(prefix=f"deepsynth-{name}-")
    os.makedirs(uri, exist_ok=True)
    return uri


def active_mlflow_run() -> Any | None:
    """The MLflow run the stack's experiment tracker opened for this step, if any."""
    try:
        import mlflow
    except ImportError:
        return None
    return mlflow.active_run()
