"""The MLflow server recipe for real: PostgreSQL (Debian's binaries) + `mlflow server` with basic auth
on loopback; a run and a registered model version go in through the server and are read back."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.containers

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "docker" / "mlflow-server" / "mlflow-server.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    # PostgreSQL runs as the `postgres` user: its folder must be reachable (pytest's tmp dirs are 0700).
    state = Path(tempfile.mkdtemp(prefix="deepsynth-mlflow-server-"))
    os.chmod(state, 0o755)
    env = {**os.environ, "MLFLOW_PORT": str(free_port()), "PG_PORT": str(free_port())}
    started = subprocess.run([str(SCRIPT), "start", str(state)], capture_output=True, text=True, env=env, timeout=300)
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        exports = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines() if line.startswith("export "))
        yield exports
    finally:
        subprocess.run([str(SCRIPT), "stop", str(state)], env=env, timeout=120)
        assert not (state / "mlflow.pid").exists()
        shutil.rmtree(state, ignore_errors=True)


def test_server_refuses_anonymous_requests(server):
    url = server["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/experiments/search?max_results=1"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=10)
    assert info.value.code == 401


def test_log_register_and_list_through_the_server(server, monkeypatch, tmp_path):
    for key, value in server.items():
        monkeypatch.setenv(key, value)
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(server["MLFLOW_TRACKING_URI"])
    mlflow.set_registry_uri(server["MLFLOW_TRACKING_URI"])
    mlflow.set_experiment("deepsynth-server-test")
    (tmp_path / "card.md").write_text("# adapter\n")
    with mlflow.start_run() as run:
        mlflow.log_param("lora_rank", 8)
        mlflow.log_metric("rouge_l", 0.31)
        mlflow.log_artifact(str(tmp_path / "card.md"), "package")  # through --serve-artifacts
    client = MlflowClient()
    got = client.get_run(run.info.run_id)
    assert got.data.params["lora_rank"] == "8" and got.data.metrics["rouge_l"] == 0.31
    assert [a.path for a in client.list_artifacts(run.info.run_id, "package")] == ["package/card.md"]
    client.create_registered_model("deepsynth-summarizer-server-test")
    version = client.create_model_version("deepsynth-summarizer-server-test", f"runs:/{run.info.run_id}/package", run.info.run_id)
    client.set_registered_model_alias("deepsynth-summarizer-server-test", "champion", version.version)
    listed = client.search_model_versions("name='deepsynth-summarizer-server-test'")
    assert [v.version for v in listed] == [version.version]
    assert client.get_model_version_by_alias("deepsynth-summarizer-server-test", "champion").run_id == run.info.run_id
