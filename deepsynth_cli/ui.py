"""``deepsynth ui``: MLflow's UI and ZenML's dashboard on this home's stores, until Ctrl+C."""

from __future__ import annotations

import signal
import sys
import threading

import click

from deepsynth_cli.output import Command, echo, echo_json, json_option


@click.command(cls=Command)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address both servers bind.")
@click.option("--mlflow-port", default=5000, show_default=True, type=int, help="Port of MLflow's UI.")
@click.option("--zenml-port", default=8237, show_default=True, type=int, help="Port of ZenML's dashboard.")
@click.option("--start-timeout", default=180, show_default=True, type=int, help="Seconds to wait for each to answer.")
@json_option
def ui(host: str, mlflow_port: int, zenml_port: int, start_timeout: int, as_json: bool) -> None:
    """Start MLflow's UI (runs, metrics, reports, registered models) and ZenML's dashboard (pipeline
    runs, steps, artifacts) on this home's stores, print both addresses, and serve until Ctrl+C or SIGTERM."""
    from deepsynth.errors import ConfigError
    from deepsynth_cli.logs import import_zenml
    from pipelines.local_stack import prepare_environment
    from pipelines.stores import require_ready

    home = prepare_environment()
    record = require_ready()
    if not record or not record.get("zenml_db"):
        raise ConfigError(
            "deepsynth ui serves this home's embedded stores; the active ZenML store is a server: "
            "open its own dashboard"
        )
    import_zenml()
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration

    from pipelines.dashboards import start_dashboards, stop_dashboards

    client = Client()  # the local user has no onboarding survey to fill in before seeing the runs
    client.update_user(
        client.active_user.id, updated_email_opt_in=False, updated_metadata={"finished_onboarding_survey": True}
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    dashboards = start_dashboards(
        record["tracking_uri"],
        record["zenml_db"],
        str(GlobalConfiguration().user_id),
        home / "logs",
        host,
        mlflow_port,
        zenml_port,
        start_timeout,
    )
    try:
        addresses = {
            "mlflow_ui": dashboards[0].url,
            "zenml_dashboard": dashboards[1].url,
            "logs": [str(home / "logs" / name) for name in ("mlflow-ui.log", "zenml-dashboard.log")],
        }
        if as_json:
            echo_json(addresses)
        else:
            echo(f"MLflow UI:       {addresses['mlflow_ui']}   (runs, metrics, reports, registered models)")
            echo(f"ZenML dashboard: {addresses['zenml_dashboard']}   (pipeline runs, steps, artifacts)")
            echo("Ctrl+C stops both.")
        sys.__stdout__.flush()
        while not stop.wait(1.0):
            gone = [d.name for d in dashboards if d.process is not None and d.process.poll() is not None]
            if gone:
                raise ConfigError(f"{', '.join(gone)} stopped; see {home / 'logs'}")
    finally:
        stop_dashboards(dashboards)
