"""Two real quickstart-sized runs through the CLI, as a user starts them (a subprocess, stderr a pipe), then:
their stderr is quiet, the run summary's commands work as printed from another directory without the
venv on PATH, and ``deepsynth runs list/show`` and ``deepsynth models compare`` describe them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
MODEL = "browse-summarizer"
SMALL = [
    "ingest.max_documents=4",
    "validate.min_valid_rows=3",
    "render.max_pages=1",
    "train.num_epochs=2",
    "evaluate.max_documents=2",
    "evaluate.generation.max_new_tokens=8",
    f"register.model_name={MODEL}",
]


def deepsynth(home: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}  # the home's own stores only
    env.update(DEEPSYNTH_HOME=str(home), ZENML_CONFIG_PATH=str(home / "zenml"))
    return subprocess.run(
        [sys.executable, "-m", "deepsynth_cli", *argv], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A home with two training runs: the second changes only the learning rate (data steps cached), version 2."""
    home = tmp_path_factory.mktemp("browse") / "home"
    done = []
    for extra in ([], ["train.learning_rate=0.02"]):
        sets = sum((["--set", s] for s in SMALL + extra), [])
        proc = deepsynth(home, "run", "--config", "configs/quickstart.yaml", "--json", *sets)
        assert proc.returncode == 0, proc.stderr[-3000:]
        done.append((json.loads(proc.stdout), proc.stderr))
    return home, done


def test_a_default_run_writes_no_bars_and_no_library_chatter_on_stderr(runs):
    _home, done = runs
    for _summary, stderr in done:
        assert "\r" not in stderr and "Registered model" not in stderr and "Creating a new version" not in stderr
        assert "Created version" not in stderr and "%|" not in stderr, stderr[-2000:]
    log = Path(done[1][0]["log_file"]).read_text()  # kept in the log file
    assert f"Registered model '{MODEL}' already exists. Creating a new version" in log


def test_the_summary_shows_how_training_ran(runs):
    summary = runs[1][0][0]
    assert summary["training"] == {"world_size": 1, "device": "cpu", "precision": "no", "quantization": "none"}


def test_a_printed_command_works_from_another_directory_without_the_venv_on_path(runs, tmp_path):
    home, done = runs
    summary = done[1][0]
    command = summary["browse"]["run"]
    assert command.startswith(f"DEEPSYNTH_HOME={home} {Path(sys.executable).parent / 'deepsynth'} runs show ")
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    # the data steps and the gate are cache hits
    assert summary["run_name"] in out and "steps (4 cache hit(s)):" in out and "train_lora" in out
    assert f"registered: {MODEL} v2" in out and "world_size 1 (processes), device cpu, precision no" in out
    assert not (tmp_path / ".deepsynth").exists()  # the printed home was used, not a new one here


def test_runs_list_shows_recent_runs_newest_first_with_their_versions(runs):
    home, done = runs
    proc = deepsynth(home, "runs", "list", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed = json.loads(proc.stdout)
    assert [r["name"] for r in listed] == [done[1][0]["run_name"], done[0][0]["run_name"]]
    assert [r["registered"] for r in listed] == [[f"{MODEL}/2"], [f"{MODEL}/1"]]
    for row in listed:
        assert row["pipeline"] == "training_pipeline" and row["status"] == "completed" and row["duration_s"] > 0
        assert row["start"]


def test_runs_show_by_id_prefix_has_steps_config_metrics_reports_and_version(runs):
    home, done = runs
    first = done[0][0]
    proc = deepsynth(home, "runs", "show", first["run_id"][:8], "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = json.loads(proc.stdout)
    assert shown["run_name"] == first["run_name"] and shown["status"] == "completed" and shown["cache_hits"] == 0
    assert list(shown["steps"]) == list(first["steps"])
    assert all(s["duration_s"] is not None for s in shown["steps"].values())
    assert shown["config"]["train"]["optimizer"]["learning_rate"] == 0.01
    assert shown["config"]["register"]["model_name"] == MODEL
    assert (
        shown["evaluation"] == first["evaluation"] and shown["adapter"]["final_loss"] == first["adapter"]["final_loss"]
    )
    assert shown["registration"]["version"] == "1" and shown["registered"] == [f"{MODEL}/1"]
    assert Path(shown["reports"]["evaluation"]["file"]).is_file() and shown["training"]["world_size"] == 1


def test_an_unknown_run_exits_2_naming_the_most_recent_runs(runs):
    home, done = runs
    proc = deepsynth(home, "runs", "show", "no-such-run", "--json")
    assert proc.returncode == 2
    error = json.loads(proc.stdout)["error"]  # one JSON document
    assert "no pipeline run 'no-such-run'" in error and all(s["run_name"] in error for s, _ in done)
    assert "Traceback" not in proc.stderr


def test_models_compare_shows_metrics_side_by_side_and_what_differs(runs):
    home, done = runs
    proc = deepsynth(home, "models", "compare", f"{MODEL}/1", f"{MODEL}@challenger", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert (result["a"]["version"], result["b"]["version"]) == ("1", "2") and "challenger" in result["b"]["aliases"]
    loss = result["metrics"]["final_loss"]
    assert loss["a"] == pytest.approx(done[0][0]["adapter"]["final_loss"])
    assert loss["difference"] == pytest.approx(loss["b"] - loss["a"])
    assert result["metrics"]["rouge_l"]["a"] == done[0][0]["registration"]["promotion"]["candidate_value"]
    assert result["params"] == {"optimizer.learning_rate": {"a": "0.01", "b": "0.02"}}  # the one config change
    assert result["data"]["dataset_hash"]["same"] is True  # the same data (the second run's data steps were cached)
    text = deepsynth(home, "models", "compare", f"{MODEL}/1", f"{MODEL}/2")
    assert text.returncode == 0 and "optimizer.learning_rate  0.01  0.02" in text.stdout and "B - A" in text.stdout


def test_printed_commands_name_the_home_only_where_it_is_not_found_from_anywhere(monkeypatch, tmp_path):
    from pipelines.outcome import store_environment

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    default = tmp_path / "data" / "deepsynth"
    for home, zenml, expected in [
        (default, default / "zenml", ""),
        (
            tmp_path / "project" / ".deepsynth",
            tmp_path / "project" / ".deepsynth" / "zenml",
            f"DEEPSYNTH_HOME={tmp_path / 'project' / '.deepsynth'} ",
        ),
        (default, tmp_path / "elsewhere", f"ZENML_CONFIG_PATH={tmp_path / 'elsewhere'} "),
    ]:
        monkeypatch.setenv("DEEPSYNTH_HOME", str(home))
        monkeypatch.setenv("ZENML_CONFIG_PATH", str(zenml))
        assert store_environment() == expected
