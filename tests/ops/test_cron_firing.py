"""Scheduled retraining as cron runs it: the exact installed command line, under cron's environment.

``deepsynth schedule install`` runs as a user runs it (the project folder, ``DEEPSYNTH_CRONTAB_FILE``
for the crontab); the command is read back from that file and run as cron runs it:
``env -i PATH=/usr/bin:/bin HOME=<tmp> SHELL=/bin/sh /bin/sh -c COMMAND`` from ``/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.scheduling import firing_lock, lock_path, parse_entries
from pipelines.stores import RECORD

ROOT = Path(__file__).parents[2]
DEEPSYNTH = Path(sys.executable).with_name("deepsynth")
#: A firing small enough for a test: a few documents, two epochs, a short evaluation.
SMALL = [
    "ingest.max_documents=4",
    "validate.min_valid_rows=3",
    "render.max_pages=1",
    "train.num_epochs=2",
    "evaluate.max_documents=2",
    "evaluate.generation.max_new_tokens=8",
    "register.model_name=cron-summarizer",
]


def install(tmp_path: Path, *overrides: str) -> tuple[Path, str]:
    """Install the default entry as a user does, from the project folder; the home and the installed command."""
    home, crontab = tmp_path / "home", tmp_path / "crontab"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENML_", "DEEPSYNTH_", "MLFLOW_"))}
    env.update(DEEPSYNTH_HOME=str(home), DEEPSYNTH_CRONTAB_FILE=str(crontab))
    argv = [DEEPSYNTH, "schedule", "install", "--cron", "0 3 * * 1", *sum((["--set", s] for s in overrides), [])]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (entry,) = parse_entries(crontab.read_text())
    assert entry["config"] == str(ROOT.resolve() / "configs" / "schedule-local.yaml")
    return home, entry["command"]


def fire_like_cron(command: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``command`` as cron does: a bare environment, /bin/sh, from /."""
    cron_env = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={tmp_path}", "SHELL=/bin/sh"]
    return subprocess.run([*cron_env, "/bin/sh", "-c", command], cwd="/", capture_output=True, text=True, timeout=600)


def summary_field(log: str, key: str) -> list[str]:
    """The value of ``key`` in each run summary (``key: value`` lines of `deepsynth run`) in the log."""
    return [line.split(": ", 1)[1] for line in log.splitlines() if line.startswith(f"{key}: ")]


def registered_versions(home: Path, model: str) -> list:
    """The versions of ``model`` in the MLflow registry of the home's local stack."""
    from mlflow import MlflowClient

    record = json.loads((home / "zenml" / RECORD).read_text())
    # the record names its databases relative to the home's ZenML folder (a copied home stays self-contained)
    uri = record.get("tracking_uri") or f"sqlite:///{home / 'zenml' / record['mlflow_db']}"
    # the registry too: a registry URI another test left set must not be read instead
    return MlflowClient(tracking_uri=uri, registry_uri=uri).search_model_versions(f"name='{model}'")


@pytest.mark.slow
def test_the_installed_entry_retrains_and_registers_under_crons_environment(tmp_path):
    home, command = install(tmp_path, *SMALL)
    log = home / "logs" / "schedule-retrain.log"
    first = fire_like_cron(command, tmp_path)
    assert first.returncode == 0, log.read_text()[-3000:] if log.exists() else first.stderr
    second = fire_like_cron(command, tmp_path)  # the next tick, nothing new: training is a cache hit too
    assert second.returncode == 0, log.read_text()[-3000:]
    assert [str(v.version) for v in registered_versions(home, "cron-summarizer")] == ["1"]
    text = log.read_text()
    assert (
        text.count("schedule retrain: firing: run --config") == 2
        and text.count("schedule retrain: finished, exit 0") == 2
    )
    names = summary_field(text, "run_name")
    assert len(set(names)) == 2 and all(n.startswith("scheduled-retrain-") for n in names), names
    assert [json.loads(steps)["train_lora"] for steps in summary_field(text, "steps")] == ["completed", "cached"]
    # Unchanged data, config and code reuse the adapter: the second firing finds it registered as v1, the champion.
    registrations = [json.loads(r) for r in summary_field(text, "registration")]
    assert [(r["version"], r["created"]) for r in registrations] == [("1", True), ("1", False)]


@pytest.mark.slow
def test_a_firing_while_the_previous_one_runs_is_skipped(tmp_path):
    home, command = install(tmp_path, *SMALL)
    log = home / "logs" / "schedule-retrain.log"
    with firing_lock(lock_path(home, "retrain")):  # the previous firing, still going
        skipped = fire_like_cron(command, tmp_path)
    assert skipped.returncode == 0
    text = log.read_text()
    assert f"schedule retrain: skipped: the previous firing (pid {os.getpid()}, started " in text
    assert f"still runs (lock {lock_path(home, 'retrain')})" in text
    assert "firing:" not in text and not (home / "zenml").exists(), "nothing ran"
