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
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in started.stdout.splitlines()
            if line.startswith("export ")
        )
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
    version = client.create_model_version(
        "deepsynth-summarizer-server-test", f"runs:/{run.info.run_id}/package", run.info.run_id
    )
    client.set_registered_model_alias("deepsynth-summarizer-server-test", "champion", version.version)
    listed = client.search_model_versions("name='deepsynth-summarizer-server-test'")
    assert [v.version for v in listed] == [version.version]
    assert client.get_model_version_by_alias("deepsynth-summarizer-server-test", "champion").run_id == run.info.run_id


@pytest.fixture
def server_stack(server, zenml_client):
    """A ZenML stack whose MLflow tracker and registry are the server, credentials in a ZenML secret."""
    from zenml.enums import StackComponentType

    previous = zenml_client.active_stack_model.name
    zenml_client.create_secret(
        "deepsynth-mlflow-server-test",
        values={"username": server["MLFLOW_TRACKING_USERNAME"], "password": server["MLFLOW_TRACKING_PASSWORD"]},
    )
    zenml_client.create_stack_component(
        "server-tracker",
        "mlflow",
        StackComponentType.EXPERIMENT_TRACKER,
        configuration={
            "tracking_uri": server["MLFLOW_TRACKING_URI"],
            "tracking_username": "{{deepsynth-mlflow-server-test.username}}",
            "tracking_password": "{{deepsynth-mlflow-server-test.password}}",
        },
    )
    zenml_client.create_stack_component(
        "server-registry", "mlflow", StackComponentType.MODEL_REGISTRY, configuration={}
    )
    zenml_client.create_stack(
        "server-stack",
        components={
            StackComponentType.ORCHESTRATOR: "default",
            StackComponentType.ARTIFACT_STORE: "default",
            StackComponentType.EXPERIMENT_TRACKER: "server-tracker",
            StackComponentType.MODEL_REGISTRY: "server-registry",
        },
    )
    zenml_client.activate_stack("server-stack")
    yield "server-stack"
    zenml_client.activate_stack(previous)


def test_export_and_register_then_models_list_through_a_stack_on_the_server(
    server_stack, trained_adapter, rendered_dataset, monkeypatch, capsys
):
    import json

    from deepsynth.adapters import TrainedAdapter
    from deepsynth.evaluation.result import EvaluationResult
    from deepsynth.export.config import ExportSettings
    from deepsynth.registry.config import RegisterConfig
    from deepsynth_cli import main
    from pipelines.local_stack import use_stack_tracking
    from steps.export_and_register import export_and_register

    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(key, raising=False)  # credentials come from the stack's ZenML secret only
    use_stack_tracking()  # what `deepsynth register` does before running the step outside a pipeline
    evaluation = EvaluationResult(systems={"adapter": {"rouge_l": 0.25, "rouge_1": 0.3}})
    _, registration = export_and_register.entrypoint(
        TrainedAdapter(trained_adapter),
        evaluation,
        rendered_dataset,
        ExportSettings(create_package=False),
        RegisterConfig(model_name="deepsynth-summarizer-server"),
    )
    assert registration["created"] and registration["promotion"]["promoted"]

    capsys.readouterr()  # what registering printed
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    model = next(m for m in listed if m["name"] == "deepsynth-summarizer-server")
    version = next(v for v in model["versions"] if v["version"] == registration["version"])
    assert sorted(version["aliases"]) == ["challenger", "champion"]
