"""Pipeline runs of this home's ZenML store, for people: the recent runs, and one run in detail.

The registered version of a run comes from MLflow's registry (the ``zenml_pipeline_run_id`` tag
that registration puts on each version), so listing runs loads no artifact (and, on the local stack,
imports no MLflow).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from deepsynth.errors import ConfigError

#: Runs named in the error for a run that does not exist.
NAMED_IN_ERRORS = 5


def _time(value: datetime | None) -> str | None:
    return value.isoformat(sep=" ", timespec="seconds") if value else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 1) if start and end else None


def registered_versions(tracking_uri: str | None) -> dict[str, list[str]]:
    """ZenML run id → the ``NAME/VERSION`` of each registry version that run registered.

    A local SQLite registry is read directly (:func:`deepsynth.registry.catalog.sqlite_records`: no MLflow import).
    """
    if not tracking_uri:
        return {}
    from deepsynth.registry.catalog import sqlite_records
    from pipelines.stores import sqlite_path

    database = sqlite_path(tracking_uri)
    records = sqlite_records(database) if database else None
    if records is not None:
        versions = [mv for model in records.values() for mv in model.versions]
    else:
        from mlflow import MlflowClient

        versions = MlflowClient(tracking_uri).search_model_versions(max_results=10_000)
    found: dict[str, list[str]] = {}
    for mv in versions:
        run_id = (mv.tags or {}).get("zenml_pipeline_run_id")
        if run_id:
            found.setdefault(run_id, []).append(f"{mv.name}/{mv.version}")
    return found


def recent_runs(client: Any, tracking_uri: str | None, limit: int = 20) -> list[dict[str, Any]]:
    """The ``limit`` most recent pipeline runs, newest first: name, id, pipeline, status, start, duration, version."""
    versions = registered_versions(tracking_uri)
    page = client.list_pipeline_runs(sort_by="desc:created", size=max(1, limit), hydrate=True)
    return [
        {
            "name": run.name,
            "id": str(run.id),
            "pipeline": run.pipeline.name if run.pipeline else None,
            "status": str(run.status.value),
            "start": _time(run.start_time),
            "duration_s": _seconds(run.start_time, run.end_time),
            "registered": versions.get(str(run.id), []),
        }
        for run in page.items[:limit]
    ]


def find_run(client: Any, ref: str) -> Any:
    """The run named by ``ref``: ``latest``, a run name, a run id or an id prefix.

    Raises:
        ConfigError: No run (or more than one) matches; the message names the most recent runs.
    """
    if ref == "latest":
        page = client.list_pipeline_runs(sort_by="desc:created", size=1)
        if page.items:
            return client.get_pipeline_run(page.items[0].id)
    else:
        try:
            return client.get_pipeline_run(ref, allow_name_prefix_match=False)
        except (KeyError, ValueError):  # ZenML's ZenKeyError: none, or an ambiguous id prefix
            pass
    recent = [run.name for run in client.list_pipeline_runs(sort_by="desc:created", size=NAMED_IN_ERRORS).items]
    if not recent:
        raise ConfigError(f"no pipeline run {ref!r}: nothing has run with this home yet")
    raise ConfigError(
        f"no pipeline run {ref!r} (a run name, id, unique id prefix or latest); the most recent: " + ", ".join(recent)
    )


def step_table(run: Any) -> dict[str, dict[str, Any]]:
    """Each step of ``run`` in order: status, duration, and whether it was a cache hit."""
    return {
        name: {
            "status": str(step.status.value),
            "duration_s": _seconds(step.start_time, step.end_time),
            "cached": str(step.status.value) == "cached",
        }
        for name, step in run.steps.items()
    }


def describe_run(run: Any, tracking_uri: str | None) -> dict[str, Any]:
    """``run`` in detail: the run summary (:func:`pipelines.outcome.summarize`) with timings, steps and config."""
    from pipelines.outcome import summarize

    summary = summarize(run)
    summary.pop("browse", None)
    steps = step_table(run)
    return {
        "run_name": run.name,
        "run_id": str(run.id),
        "pipeline": run.pipeline.name if run.pipeline else None,
        "status": str(run.status.value),
        "start": _time(run.start_time),
        "end": _time(run.end_time),
        "duration_s": _seconds(run.start_time, run.end_time),
        "steps": steps,
        "cache_hits": sum(step["cached"] for step in steps.values()),
        "registered": registered_versions(tracking_uri).get(str(run.id), []),
        **{k: v for k, v in summary.items() if k not in ("run_name", "run_id", "status", "steps")},
        "config": dict(run.config.parameters or {}),
    }
