"""Quiet by default: bars only on a terminal or with --progress, MLflow's prints in the log file (on stderr from -v).

The whole default run's stderr is checked in tests/pipelines/test_runs_browse.py.
"""

from __future__ import annotations

import logging
import os

import pytest

from deepsynth.progress import ENV, bars_enabled, progress_bar
from deepsynth_cli import logs, main

ALREADY_EXISTS = "Registered model 'quiet-model' already exists. Creating a new version of this model..."


@pytest.fixture
def fresh_logging():
    """Undo :func:`deepsynth_cli.logs.configure` (its handlers and the variables it set) after the test."""
    before = {k: os.environ.get(k) for k in (ENV, "TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    logs._Setup.handlers, logs._Setup.environment = [], {}
    for key, value in before.items():
        os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


class Terminal:
    def __init__(self, tty: bool):
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(
    "tty, forced, drawn", [(True, None, True), (False, None, False), (False, "1", True), (True, "0", False)]
)
def test_bars_are_drawn_on_a_terminal_unless_told_otherwise(monkeypatch, tty, forced, drawn):
    stream = Terminal(tty)
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.delenv(ENV, raising=False)
    if forced is not None:
        monkeypatch.setenv(ENV, forced)
    assert bars_enabled() is drawn
    bar = progress_bar(total=3, desc="render", file=stream, mininterval=0)
    for _ in range(3):
        bar.update(1)
    bar.close()
    assert ("\r" in stream.text) is drawn and ("render" in stream.text) is drawn


def test_the_callers_own_switch_still_turns_a_bar_off(monkeypatch):
    """The trainer's progress_bar knob (and rank > 0) disable the bar even with --progress."""
    stream = Terminal(True)
    monkeypatch.setenv(ENV, "1")
    bar = progress_bar(False, total=2, file=stream, mininterval=0)
    bar.update(2)
    bar.close()
    assert stream.text == ""


def test_progress_flag_and_terminal_decide_once_for_every_bar_and_are_undone_next_time(fresh_logging, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setenv(ENV, "0")  # the user's own choice is kept ...
    logs.configure()
    assert os.environ[ENV] == "0"
    logs.configure(progress=True)  # ... but --progress wins over it
    assert os.environ[ENV] == "1" and "TQDM_DISABLE" not in os.environ
    logs.configure()  # the next in-process invocation, without --progress: the user's value again
    assert os.environ[ENV] == "0" and os.environ["TQDM_DISABLE"] == "1"
    monkeypatch.delenv(ENV)
    logs.configure(progress=True)  # stderr is pytest's capture: not a terminal
    assert os.environ[ENV] == "1" and "TQDM_DISABLE" not in os.environ
    logs.configure()
    assert os.environ[ENV] == "0" and os.environ["TQDM_DISABLE"] == "1"


def test_the_progress_flag_is_global_and_per_command(capsys):
    assert main(["--progress", "models", "--help"]) == 0
    assert main(["run", "--help"]) == 0 and "--progress" in capsys.readouterr().out


@pytest.mark.parametrize("verbosity, shown", [(0, False), (1, True)])
def test_mlflow_registration_prints_reach_stderr_only_from_v_and_always_the_log(
    fresh_logging, tmp_path, capsys, verbosity, shown
):
    import mlflow
    from support.adapters import mlflow_store_at

    log_file = logs.configure(verbosity=verbosity, home=tmp_path / "home")
    logs.import_zenml()
    with mlflow_store_at(tmp_path, "quiet"):
        (tmp_path / "model").mkdir()
        for _ in range(2):  # the second registration is the one MLflow calls "already exists"
            mlflow.register_model(f"file://{tmp_path / 'model'}", "quiet-model")
    err = capsys.readouterr().err
    assert (ALREADY_EXISTS in err) is shown and ("Created version '2' of model 'quiet-model'" in err) is shown
    assert ALREADY_EXISTS in log_file.read_text()


def test_mlflow_imported_after_the_cli_set_up_logging_still_prints_into_the_log(tmp_path):
    """ZenML is set up without importing MLflow (2-3 s); MLflow's prints are routed when something imports it."""
    import json
    import subprocess
    import sys

    code = f"""
import json, sys
from pathlib import Path
from deepsynth_cli import logs
log_file = logs.configure(verbosity=0, home=Path({str(tmp_path / "home")!r}))
logs.import_zenml()
imported_with_zenml = "mlflow" in sys.modules
import mlflow
from mlflow.utils import logging_utils
mlflow.set_tracking_uri({f"sqlite:///{tmp_path / 'mlflow.db'}"!r})
mlflow.set_registry_uri(mlflow.get_tracking_uri())
for _ in range(2):
    mlflow.register_model({f"file://{tmp_path / 'model'}"!r}, "quiet-model")
import logging
logging.getLogger("mlflow.tracking").warning("a warning of MLflow's own logger")  # its handler writes to the stream
print(json.dumps({{"imported_with_zenml": imported_with_zenml, "log": log_file.read_text(),
    "stream": type(logging_utils.MLFLOW_LOGGING_STREAM).__name__}}))
"""
    (tmp_path / "model").mkdir()
    env = {**os.environ, "MLFLOW_LOGGING_LEVEL": "INFO"}  # MLflow then passes INFO records on to its handler
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["imported_with_zenml"] is False and result["stream"] == "_LinesToLog"
    assert ALREADY_EXISTS in result["log"] and ALREADY_EXISTS not in proc.stderr
    assert "a warning of MLflow's own logger" in result["log"]  # logged once, not fed back to MLflow's handler
