"""Browse runs, reports and models: MLflow's UI and ZenML's dashboard on this home's own stores.

Both bind 127.0.0.1 unless told otherwise. ZenML's dashboard is its server (``zenml[server]``'s
packages, the ``ui`` extra) started on the home's SQLite database without authentication, the way
``zenml login --local`` runs it, but without switching this home's client over to that server.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deepsynth.errors import DeepSynthError

MLFLOW_PORT = 5000
ZENML_PORT = 8237


@dataclass
class Dashboard:
    """A started UI: its name, address, command and process."""

    name: str
    url: str
    command: list[str]
    process: subprocess.Popen | None = field(default=None, repr=False)


def mlflow_executable() -> str:
    """The ``mlflow`` command of this environment, as a user types it (``.venv/bin/mlflow`` from the project)."""
    path = Path(sys.executable).with_name("mlflow")
    if not path.is_file():
        return "mlflow"
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def mlflow_ui_command(tracking_uri: str, host: str = "127.0.0.1", port: int = MLFLOW_PORT) -> list[str]:
    """``mlflow ui`` on the tracking store ``tracking_uri``."""
    return [
        mlflow_executable(),
        "ui",
        "--backend-store-uri",
        tracking_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def mlflow_run_url(experiment_id: str, run_id: str, port: int = MLFLOW_PORT, host: str = "127.0.0.1") -> str:
    """Where MLflow's UI shows a run's artifacts."""
    return f"http://{host}:{port}/#/experiments/{experiment_id}/runs/{run_id}/artifacts"


def printable(command: list[str]) -> str:
    """A command line to copy into a shell."""
    return shlex.join(command)


def zenml_server_environment(database: str, user_id: str) -> dict[str, str]:
    """Environment of a local ZenML server on ``database`` (a SQLite file), as ``zenml login --local`` sets it."""
    server_config = Path(database).parent.parent.parent / "server"  # <home>/zenml/server: not the client's config
    return {
        **os.environ,
        "ZENML_SERVER": "true",
        "ZENML_SERVER_ALLOW_LOCAL_FILE_ACCESS": "true",
        "ZENML_CONFIG_PATH": str(server_config),
        "ZENML_STORE_URL": f"sqlite:///{database}",
        "ZENML_LOCAL_STORES_PATH": str(Path(database).parent.parent),
        "ZENML_SERVER_AUTH_SCHEME": "NO_AUTH",
        "ZENML_SERVER_DEPLOYMENT_TYPE": "local",
        "ZENML_DISABLE_DATABASE_MIGRATION": "True",
        "ZENML_SERVER_AUTO_ACTIVATE": "True",
        "ZENML_USER_ID": user_id,
        "ZENML_ANALYTICS_OPT_IN": "false",
    }


def zenml_server_command(host: str = "127.0.0.1", port: int = ZENML_PORT) -> list[str]:
    """The ZenML server (API and dashboard) under uvicorn."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "zenml.zen_server.zen_server_api:app",
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def _wait_until_up(dashboard: Dashboard, timeout_s: float) -> None:
    """Wait until ``dashboard`` answers on ``/health`` (both servers have one)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if dashboard.process is not None and dashboard.process.poll() is not None:
            raise DeepSynthError(
                f"{dashboard.name} exited with code {dashboard.process.returncode} while starting "
                f"({printable(dashboard.command)}); is port {dashboard.url.rsplit(':', 1)[-1]} free?"
            )
        try:
            with urllib.request.urlopen(dashboard.url + "/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise DeepSynthError(f"{dashboard.name} did not answer on {dashboard.url} within {timeout_s:.0f} s")


def _start(name: str, command: list[str], url: str, env: dict[str, str] | None, log: Path) -> Dashboard:
    handle = open(log, "ab")  # noqa: SIM115 - the child keeps it
    process = subprocess.Popen(
        command, env=env, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    return Dashboard(name, url, command, process)


def start_dashboards(
    tracking_uri: str,
    zenml_database: str,
    zenml_user_id: str,
    log_dir: Path,
    host: str = "127.0.0.1",
    mlflow_port: int = MLFLOW_PORT,
    zenml_port: int = ZENML_PORT,
    timeout_s: float = 180.0,
) -> list[Dashboard]:
    """Start MLflow's UI and ZenML's dashboard and wait until both answer.

    Args:
        tracking_uri: The MLflow tracking store.
        zenml_database: ZenML's SQLite database file.
        zenml_user_id: The local ZenML user (the dashboard shows this user's runs).
        log_dir: Where each server's output goes (``mlflow-ui.log``, ``zenml-dashboard.log``).
        host: Address to bind.
        mlflow_port: MLflow UI port.
        zenml_port: ZenML dashboard port.
        timeout_s: Longest wait for each to answer.

    Returns:
        The two running dashboards (stop them with :func:`stop_dashboards`).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    started = [
        _start(
            "MLflow UI",
            mlflow_ui_command(tracking_uri, host, mlflow_port),
            f"http://{host}:{mlflow_port}",
            None,
            log_dir / "mlflow-ui.log",
        ),
        _start(
            "ZenML dashboard",
            zenml_server_command(host, zenml_port),
            f"http://{host}:{zenml_port}",
            zenml_server_environment(zenml_database, zenml_user_id),
            log_dir / "zenml-dashboard.log",
        ),
    ]
    try:
        for dashboard in started:
            _wait_until_up(dashboard, timeout_s)
    except BaseException:
        stop_dashboards(started)
        raise
    return started


def stop_dashboards(dashboards: list[Dashboard], timeout_s: float = 20.0) -> None:
    """Stop each dashboard's process group (SIGTERM, then SIGKILL after ``timeout_s``)."""
    for dashboard in dashboards:
        if dashboard.process is not None and dashboard.process.poll() is None:
            os.killpg(dashboard.process.pid, signal.SIGTERM)
    for dashboard in dashboards:
        if dashboard.process is None:
            continue
        try:
            dashboard.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(dashboard.process.pid, signal.SIGKILL)
            dashboard.process.wait(timeout=timeout_s)
