"""Helpers the steps share: where to write folder outputs, the MLflow run of the stack's tracker, and
which run and model version a report describes."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from zenml import get_step_context

from deepsynth.process_exit import temp_dir_until_exit


def output_dir(name: str) -> str:
    """A local folder to write output ``name`` into: its artifact URI on a local store, else a temp dir.

    Outside a pipeline run (a step's ``.entrypoint()`` in tests) it is a temp dir too.
    """
    try:
        uri = get_step_context().get_output_artifact_uri(name)
    except RuntimeError:  # no step context: called directly
        uri = "tmp://"
    if "://" in uri:  # remote artifact store: the materializer uploads the folder afterwards
        return temp_dir_until_exit(f"deepsynth-{name}-")
    os.makedirs(uri, exist_ok=True)
    return uri


def source_digest(*names: str) -> str:
    """sha256 of the named modules' Python source (a package's: every ``.py`` file under it), read, not imported.

    A step's cache function returns it. ZenML's cache key covers the step's own code; a step whose output
    is computed by library code adds that code this way, so that changing it runs the step again, while a
    run that finds the step cached imports none of it.
    """
    digest = hashlib.sha256()
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"no source for {name!r}", name=name)
        origin = Path(spec.origin)
        root = origin.parent if spec.submodule_search_locations else None
        for path in sorted(root.rglob("*.py")) if root else [origin]:
            digest.update(f"{name}:{path.relative_to(root) if root else path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def active_mlflow_run() -> Any | None:
    """The MLflow run the stack's experiment tracker opened for this step, if any."""
    try:
        import mlflow
    except ImportError:
        return None
    return mlflow.active_run()


def _model_version() -> Any | None:
    """The run's ZenML Model Control Plane version (``None`` without a model or outside a run)."""
    try:
        return get_step_context().model_version
    except RuntimeError:  # no step context: called directly
        return None


def zenml_model_version() -> str | None:
    """The run's ZenML Model Control Plane version number, if the pipeline has a model."""
    version = _model_version()
    return str(version.number) if version is not None and version.number is not None else None


def report_context(**about: Any) -> dict[str, Any]:
    """The header of a report this step writes: the run (name and id), the model version, then ``about``."""
    context: dict[str, Any] = {}
    try:
        run = get_step_context().pipeline_run
        context["run"] = f"{run.name} ({run.id})"
    except RuntimeError:  # called outside a pipeline run
        pass
    version = _model_version()
    if version is not None and version.number is not None:
        context["model version"] = f"{version.model.name} v{version.number} (ZenML)"
    return {**context, **about}
