"""A run job's live view: its ZenML steps and the loss curve from its MLflow run, looked up by run name."""

from __future__ import annotations

from typing import Any


def tracking() -> str | None:
    """Point MLflow at the project's stack (None when nothing has run with this home yet)."""
    from pipelines.local_stack import recorded_tracking_uri, use_stack_tracking
    from pipelines.stores import StoreError

    try:
        uri = recorded_tracking_uri()
    except StoreError:
        return None
    return use_stack_tracking(uri)


def run_view(run_name: str) -> dict[str, Any]:
    """``{"status", "steps": {step: {status, duration_s, cached}}, "loss": [[step, value], ...]}`` so far."""
    view: dict[str, Any] = {"run_name": run_name, "status": None, "steps": {}, "loss": []}
    if tracking() is None:
        return view
    from zenml.client import Client

    from pipelines.run_browser import step_table

    try:
        run = Client().get_pipeline_run(run_name)
    except (KeyError, ValueError):
        return view  # the run has not been created yet
    view["status"] = str(run.status.value)
    view["steps"] = step_table(run)
    view["loss"] = loss_curve(run_name)
    return view


def loss_curve(run_name: str) -> list[list[float]]:
    """``train_loss`` by step from the MLflow run ZenML's experiment tracker names after the pipeline run."""
    from mlflow import MlflowClient

    client = MlflowClient()
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"attributes.run_name = '{run_name}'",
        max_results=1,
    )
    if not runs:
        return []
    return [[m.step, m.value] for m in client.get_metric_history(runs[0].info.run_id, "train_loss")]
