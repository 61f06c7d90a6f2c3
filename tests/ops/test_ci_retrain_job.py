"""examples/ci/retrain.yml run as GitHub Actions runs it: the job's own steps, parsed from the YAML, in order.

A fresh clone of the project's committed tree (``git clone`` of HEAD: what ``actions/checkout``
fetches) and a fresh virtualenv (``actions/setup-python``) are
made once per module; the workflow's ``run:`` steps then run in them under ``bash -e`` as GitHub runs
a step, with a CI-like environment built from scratch: ``CI=true``, ``GITHUB_ACTIONS=true``,
``GITHUB_WORKSPACE``, a ``GITHUB_OUTPUT`` file per step, stdin closed and output piped (no terminal),
the job's ``env:`` block with ``${{ … }}`` expressions filled from :data:`EXPRESSIONS`, plus this
machine's own pip and TLS settings (``PIP_*``, the CA bundle variables) and ``HOME`` (pip's cache),
which a runner has in its own form.

Deliberate differences from a GitHub runner, each printed when applied:

* :data:`SUBSTITUTIONS`: the PyTorch index (unreachable here) is dropped from the torch line; this
  machine's pip configuration finds the same CPU wheel, ``torch==2.13.0``, locally.
* ``PIP_NO_COMPILE=1``: installs skip byte-compiling every file (speed only; as tests/support/fresh_venv.py).
* ``uses:`` steps are emulated as described in :data:`ACTIONS`; an unknown action fails the test.

The job runs twice on the same runner and workspace. The first run passes (exit 0: the first
version becomes champion). The second is the next push, :data:`NEXT_PUSH`, a hyper-parameter
tweak in configs/ci.yaml: ``actions/cache`` restores ``.deepsynth`` (its last restore key matches
any earlier save), the new adapter does not beat the champion by more than ``register.margin``
(the tiny CI model scores ROUGE-L 0.0, as the champion did), and configs/ci.yaml's
``register.require_promotion`` fails the job with exit 4. (Pushing the same commit again finds
training and evaluation cached and the adapter registered, already the champion: exit 0.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
WORKFLOW = ROOT / "examples" / "ci" / "retrain.yml"
TORCH_INDEX = " --index-url https://download.pytorch.org/whl/cpu"
#: (old, new, why) applied to every run: script; each must apply somewhere, or the test is stale.
SUBSTITUTIONS = [
    (
        TORCH_INDEX,
        "",
        "download.pytorch.org is unreachable here; this machine's pip configuration "
        "finds the CPU wheel torch==2.13.0 locally",
    )
]
#: How each action is emulated (the first run of the job / later runs where they differ).
ACTIONS = {
    "actions/checkout": "emulated: the workspace is a fresh `git clone` of this repository's HEAD",
    "actions/setup-python": "emulated: a fresh virtualenv of this Python 3.11 is first on PATH (built once per module)",
    "actions/cache": "emulated: a later run of the job keeps the workspace's .deepsynth (the restore key `deepsynth-` "
    "matches every earlier save; a run that passed saved it)",
    "actions/upload-artifact": "emulated: `with.path` is copied to the job's artifacts folder",
}
#: The next push's change (old, new) in configs/ci.yaml: a new adapter, which the quality gate then judges.
NEXT_PUSH = ("  learning_rate: 0.001 ", "  learning_rate: 0.002 ")
MACHINE_ENV = ("HOME", "LANG", "PIP_", "SSL_CERT_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def expressions(workspace: Path) -> dict[str, str]:
    """Values of the ``${{ … }}`` expressions the job uses (an unset secret is an empty string on GitHub)."""
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {
        "github.workspace": str(workspace),
        "github.ref": "refs/heads/main",
        "github.sha": sha,
        "secrets.MLFLOW_TRACKING_URI": "",
    }


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with every ``${{ expr }}`` replaced; an expression without a value fails the test."""

    def value(match: re.Match) -> str:
        assert match.group(1) in values, (
            f"no value for the workflow expression ${{{{ {match.group(1)} }}}}: add it to expressions()"
        )
        return values[match.group(1)]

    return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", value, str(text))


@dataclass
class StepResult:
    name: str
    code: int | None  # None: skipped or emulated
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Runner:
    """One runner machine: its workspace, its Python (setup-python) and where uploads go."""

    workspace: Path
    python_bin: Path
    artifacts: Path
    temp: Path
    applied: set[str] = field(default_factory=set)

    def env(self, job_env: dict[str, str], output_file: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k.startswith(MACHINE_ENV)}
        env.update(
            PATH=f"{self.python_bin}:/usr/bin:/bin",
            CI="true",
            GITHUB_ACTIONS="true",
            PIP_NO_COMPILE="1",
            GITHUB_WORKSPACE=str(self.workspace),
            GITHUB_OUTPUT=str(output_file),
            RUNNER_TEMP=str(output_file.parent),
        )
        env.update(job_env)
        return env

    def run_step(self, step: dict, job_env: dict[str, str], values: dict[str, str]) -> StepResult:
        name = step.get("name") or step.get("uses") or step["run"].splitlines()[0]
        if "uses" in step:
            return self.use(step, name)
        script = fill(step["run"], values)
        for old, new, why in SUBSTITUTIONS:
            if old in script:
                script = script.replace(old, new)
                self.applied.add(old)
                print(f"[{name}] substituted {old.strip()!r} -> {new!r}: {why}")
        output_file = self.temp / f"github-output-{len(list(self.temp.glob('github-output-*')))}"
        output_file.write_text("")
        script_file = output_file.with_suffix(".sh")
        script_file.write_text(script)
        proc = subprocess.run(
            ["bash", "-e", str(script_file)],
            cwd=self.workspace,
            env=self.env(job_env, output_file),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=1500,
        )
        outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
        print(f"[{name}] exit {proc.returncode}; outputs {outputs}")
        return StepResult(name, proc.returncode, proc.stdout, proc.stderr, outputs)

    def use(self, step: dict, name: str) -> StepResult:
        action = step["uses"].split("@")[0]
        assert action in ACTIONS, f"{action}: no emulation for this action; add one to ACTIONS"
        print(f"[{name}] {ACTIONS[action]}")
        if action == "actions/upload-artifact":
            for path in str(step["with"]["path"]).split():
                source = self.workspace / path
                if source.exists():
                    self.artifacts.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, self.artifacts / source.name)
        return StepResult(name, None)

    def run_job(self, job: str = "retrain") -> dict[str, StepResult]:
        """Every step of ``job`` in order; after a failed step only ``if: always()`` steps run."""
        spec = yaml.safe_load(WORKFLOW.read_text())["jobs"][job]
        values = expressions(self.workspace)
        job_env = {k: fill(v, values) for k, v in (spec.get("env") or {}).items()}
        results: dict[str, StepResult] = {}
        failed = False
        for index, step in enumerate(spec["steps"]):
            if failed and step.get("if") != "always()":
                print(f"[{step.get('name', index)}] skipped: an earlier step failed")
                continue
            result = self.run_step(step, job_env, values)
            results[step.get("id") or result.name] = result
            failed = failed or (result.code not in (None, 0))
        return results


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    """A runner with a fresh checkout in its workspace and a fresh Python first on its PATH (one per module)."""
    base = tmp_path_factory.mktemp("runner")
    workspace = base / "work" / "deepsynth"
    subprocess.run(["git", "clone", "--quiet", ROOT, workspace], check=True, timeout=120)
    venv = base / "python"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    (base / "temp").mkdir()
    return Runner(
        workspace=workspace, python_bin=venv / "bin", artifacts=base / "artifacts" / "run-1", temp=base / "temp"
    )


def summary_of(runner: Runner) -> dict:
    """The uploaded run-summary.json, parsed (the upload must be one JSON document)."""
    return json.loads((runner.artifacts / "run-summary.json").read_text())


@pytest.mark.slow
def test_the_workflow_passes_then_fails_its_quality_gate(runner):
    first = runner.run_job()
    install = first["Install (CPU torch first, then the pinned set)"]
    assert install.code == 0, install.stderr[-3000:]
    assert runner.applied == {TORCH_INDEX}, "every documented substitution must still apply"
    retrain = first["retrain"]
    assert retrain.code == 0, retrain.stderr[-3000:]
    assert retrain.outputs == {"exit_code": "0"}
    assert "::notice::retraining passed" in retrain.stdout
    summary = summary_of(runner)
    assert summary["status"] == "completed" and "error" not in summary
    promotion = summary["registration"]["promotion"]
    assert summary["registration"]["version"] == "1" and promotion["promoted"] is True and promotion["champion"] == "1"

    # The next push: a hyper-parameter tweak; same runner, .deepsynth restored by the cache's last restore key.
    cache = next(
        s
        for s in yaml.safe_load(WORKFLOW.read_text())["jobs"]["retrain"]["steps"]
        if "actions/cache" in s.get("uses", "")
    )
    assert "deepsynth-" in cache["with"]["restore-keys"].split(), (
        "the emulation keeps .deepsynth: a bare restore key must match"
    )
    (runner.workspace / "run-summary.json").unlink()
    config = runner.workspace / "configs" / "ci.yaml"
    assert NEXT_PUSH[0] in config.read_text()
    config.write_text(config.read_text().replace(*NEXT_PUSH))
    runner.artifacts = runner.artifacts.with_name("run-2")
    second = runner.run_job()
    retrain = second["retrain"]
    assert retrain.code == 4, retrain.stderr[-3000:]
    assert retrain.outputs == {"exit_code": "4"}
    assert "::error::quality gate (exit 4)" in retrain.stdout
    assert "Upload the run summary" in second, "the upload runs after a failed step (if: always())"
    failed = summary_of(runner)
    assert failed["exit_code"] == 4 and "was not promoted" in failed["error"]
    promotion = failed["registration"]["promotion"]
    assert failed["registration"]["version"] == "2" and promotion["promoted"] is False and promotion["champion"] == "1"
