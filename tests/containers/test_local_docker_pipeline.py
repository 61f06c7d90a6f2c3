"""The quickstart pipeline on the local_docker orchestrator: each step in its own container of the
CPU image, on a real Docker engine (started by docker/test-containers.sh; `make test-containers`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.containers

ROOT = Path(__file__).parents[2]
IMAGE = "deepsynth/cpu:0.1.0"
SCALED_DOWN = [
    "ingest.max_documents=6",
    "render.max_pages=1",
    "validate.min_valid_rows=3",
    "train.num_epochs=1",
    "train.batch_size=2",
]


def docker(*args: str) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, env={**os.environ, "DOCKER_BUILDKIT": "0"}
    )
    if result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


@pytest.fixture(scope="module")
def engine():
    """The engine must be there: a machine that cannot run Docker fails here, loudly."""
    if not os.environ.get("DOCKER_HOST"):
        pytest.fail("DOCKER_HOST is not set: run the container tests through `make test-containers`")
    docker("version")
    assert docker("image", "inspect", "-f", "{{.Config.User}}", IMAGE) == "10001:10001", (
        "the image's default user is non-root"
    )
    return os.environ["DOCKER_HOST"]


def deepsynth(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENML_", "DEEPSYNTH_HOME"))}
    env.update(
        DEEPSYNTH_HOME=str(home),
        ZENML_CONFIG_PATH=str(home / "zenml"),
        DEEPSYNTH_DOCKER_NETWORK="none",
        ZENML_ANALYTICS_OPT_IN="false",
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    exe = str(Path(sys.executable).with_name("deepsynth"))
    return subprocess.run([exe, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)


def last_json(stdout: str) -> dict:
    """The CLI's --json summary (ZenML also logs to stdout): the last top-level JSON object."""
    return json.loads(stdout if stdout.startswith("{") else stdout[stdout.rindex("\n{\n") + 1 :])


def test_each_step_runs_in_its_own_container_of_the_cpu_image(engine, tmp_path):
    home = tmp_path / "home"
    registered = deepsynth(home, "stack", "register", "local-docker")
    assert registered.returncode == 0, registered.stderr[-2000:]
    assert last_json(registered.stdout)["components"]["orchestrator"]["flavor"] == "local_docker"
    before = set(docker("ps", "-aq", "--no-trunc").split())

    sets = [item for s in ["deployment.stack=deepsynth-docker", *SCALED_DOWN] for item in ("--set", s)]
    run = deepsynth(home, "run", "--config", "configs/quickstart.yaml", *sets, "--json")
    new = [c for c in docker("ps", "-aq", "--no-trunc").split() if c not in before]
    containers = {}
    for cid in new:
        image, code, args = docker("inspect", "-f", "{{.Config.Image}}|{{.State.ExitCode}}|{{json .Args}}", cid).split(
            "|", 2
        )
        argv = json.loads(args)
        containers[argv[argv.index("--step_name") + 1]] = (image, int(code), cid)
    logs = {step: docker("logs", "--tail", "30", cid) if code else "" for step, (_, code, cid) in containers.items()}
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stderr[-3000:]}\nfailed containers: {logs}"

    summary = last_json(run.stdout)
    assert summary["status"] == "completed"
    steps = summary["steps"]
    assert {"ingest", "render_pages", "validate_dataset", "check_data_quality", "train_lora"} <= set(steps)
    assert all(status == "completed" for status in steps.values()), steps
    # One container per step, each on the CPU image, each exited 0: nothing ran in the test process.
    assert sorted(containers) == sorted(steps)
    assert {image for image, _, _ in containers.values()} == {IMAGE}
    assert all(code == 0 for _, code, _ in containers.values())
    assert summary["valid"] >= 3 and summary["adapter"]["path"]
    docker("rm", *[cid for _, _, cid in containers.values()])
