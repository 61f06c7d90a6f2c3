"""The dependency audit runs in a networked CI job (examples/ci/audit.yml): pip-audit, pinned, over
requirements.lock, strict (a package it could not audit fails the job), on lock changes and weekly.

pip-audit cannot reach a vulnerability feed from the development machine (SECURITY.md), so the job
is checked here as a file: what it runs, when, and that nothing in it swallows a failure."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]
WORKFLOW = ROOT / "examples" / "ci" / "audit.yml"


def workflow() -> dict:
    # PyYAML reads the key `on` as the boolean True (YAML 1.1)
    return {("on" if key is True else key): value for key, value in yaml.safe_load(WORKFLOW.read_text()).items()}


def audit_commands(job: dict) -> list[list[str]]:
    lines = [ln.strip() for step in job["steps"] for ln in step.get("run", "").splitlines()]
    return [shlex.split(ln) for ln in lines if re.match(r"\S*pip-audit\s", ln)]


def test_the_audit_job_runs_pip_audit_strictly_over_the_lock_file():
    (job,) = workflow()["jobs"].values()
    commands = audit_commands(job)
    assert commands, "no pip-audit command in the workflow"
    for argv in commands:
        assert argv[argv.index("-r") + 1] == "requirements.lock"
        assert {"--strict", "--no-deps", "--disable-pip"} <= set(argv)  # strict: a skipped package fails the job
    services = {
        argv[argv.index("--vulnerability-service") + 1] if "--vulnerability-service" in argv else "pypi"
        for argv in commands
    }
    assert services == {"pypi", "osv"}
    installs = [ln for step in job["steps"] for ln in step.get("run", "").splitlines() if "pip install" in ln]
    assert any(re.search(r"pip install pip-audit==\d+\.\d+\.\d+$", ln.strip()) for ln in installs)  # pinned
    text = WORKFLOW.read_text()
    assert "continue-on-error" not in text and "|| true" not in text and "set +e" not in text
    assert job["runs-on"].startswith("ubuntu") and "container" not in job  # a hosted runner, with network


def test_the_audit_runs_when_the_lock_changes_and_every_week():
    triggers = workflow()["on"]
    assert "requirements.lock" in triggers["push"]["paths"] and "requirements.lock" in triggers["pull_request"]["paths"]
    (schedule,) = triggers["schedule"]
    assert len(schedule["cron"].split()) == 5
    assert "workflow_dispatch" in triggers


def test_every_requirement_in_the_lock_is_pinned_exactly():
    """--no-deps audits exactly what the file names: each line must be one package at one version."""
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "requirements.lock").read_text().splitlines()]
    requirements = [ln for ln in lines if ln]
    assert requirements
    unpinned = [
        ln for ln in requirements if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[\w,-]+\])?==[\w.+!-]+", ln)
    ]
    assert unpinned == []
    names = [re.split(r"[\[=]", ln)[0].lower().replace("_", "-") for ln in requirements]
    assert len(names) == len(set(names))  # pip-audit refuses a package listed twice
