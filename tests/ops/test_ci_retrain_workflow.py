"""The CI workflow's command, run as the workflow runs it: exit 0 on a good run, 3 when the data
gate fails, 2 on a bad config; the workflow names every exit code the CLI defines. (The whole job,
step by step in a fresh clone and virtualenv, with the quality gate's exit 4: test_ci_retrain_job.py.)"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
WORKFLOW = ROOT / "examples" / "ci" / "retrain.yml"


def workflow_command() -> list[str]:
    """The `deepsynth run …` command line of the workflow's retrain step."""
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    script = next(s["run"] for s in jobs["retrain"]["steps"] if s.get("id") == "retrain")
    line = next(ln.strip() for ln in script.splitlines() if ln.strip().startswith("deepsynth run"))
    return shlex.split(line.split(">")[0])


def run_like_ci(home: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = workflow_command()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENML_", "DEEPSYNTH_"))}
    env.update(
        DEEPSYNTH_HOME=str(home), ZENML_ANALYTICS_OPT_IN="false", MLFLOW_DISABLE_TELEMETRY="true", OMP_NUM_THREADS="1"
    )
    exe = str(Path(sys.executable).with_name("deepsynth"))
    return subprocess.run([exe, *argv[1:], *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_workflow_runs_the_ci_config_and_fails_on_the_exit_code():
    assert workflow_command() == ["deepsynth", "run", "--config", "configs/ci.yaml", "--json"]
    text = WORKFLOW.read_text()
    assert "exit $code" in text and "3) echo" in text


def test_workflow_installs_the_pipelines_extra_and_names_every_exit_code():
    from deepsynth.errors import Interrupted
    from deepsynth_cli.app import EXIT_CODES

    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["retrain"]["steps"]
    install = next(s["run"] for s in steps if "pip install -c requirements.lock" in s.get("run", ""))
    assert "-e '.[pipelines]'" in install, "deepsynth run needs the [pipelines] extra (pandas, ZenML, MLflow)"
    script = next(s["run"] for s in steps if s.get("id") == "retrain")
    branches = re.findall(r"^\s*(\d+|\*)\)", script, flags=re.M)
    in_ci = [code for code in EXIT_CODES if code != Interrupted.exit_code]  # no one presses Ctrl-C in a CI job
    assert branches == [str(code) for code in in_ci if code != 1] + ["*"], "one case branch per exit code; 1 falls to *"
    header = [line for line in WORKFLOW.read_text().splitlines() if line.startswith("#")]
    for code in in_ci:
        assert any(re.match(rf"#\s+{code}\s", line) for line in header), f"exit {code} is not explained in the header"


@pytest.mark.slow
def test_ci_command_exit_codes(tmp_path):
    """The workflow's command on a failing data gate (exit 3) and on a refused config (exit 2); the passing run
    and the quality gate's exit 4 are in tests/ops/test_ci_retrain_job.py, which runs the whole job."""
    home = tmp_path / "home"
    failed = run_like_ci(home, "--set", "validate.min_valid_rows=1000")
    assert failed.returncode == 3, failed.stderr[-3000:]
    assert "data validation failed" in failed.stderr and "min_valid_documents: observed" in failed.stderr
    assert json.loads(failed.stdout)["exit_code"] == 3  # one JSON document on stdout, even on failure
    # A CI config that names a SQLite tracking store is refused before anything runs: exit 2.
    refused = run_like_ci(home, "--set", "tracking.server=sqlite:///mlflow.db")
    assert refused.returncode == 2 and "local file/SQLite store" in refused.stderr
