"""The whole training pipeline through the CLI, then the registry and summarize commands on its output."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from deepsynth_cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
CONFIG = str(ROOT / "configs" / "quickstart.yaml")
SMALL = [
    # Its own instruction: no other module's run in the worker's session store has these data steps cached.
    "ingest.instruction_prompt=Summarize this paper (end-to-end test)",
    "ingest.max_documents=4",
    "validate.min_valid_rows=3",
    "render.max_pages=1",
    "train.num_epochs=2",
    "evaluate.max_documents=2",
    "evaluate.generation.max_new_tokens=8",
    "register.model_name=e2e-summarizer",
]


def cli_json(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip().startswith(("{", "[")) else out)


def run(capsys, *overrides):
    args = ["run", "--config", CONFIG, "--json"]
    for item in SMALL + list(overrides):
        args += ["--set", item]
    return cli_json(capsys, *args)


def test_quickstart_trains_evaluates_registers_and_serves(zenml_client, capsys, tmp_path):
    code, summary = run(capsys)
    assert code == 0, summary
    steps = summary["steps"]
    assert steps == dict.fromkeys(
        [
            "ingest",
            "render_pages",
            "validate_dataset",
            "check_data_quality",
            "train_lora",
            "evaluate_adapter",
            "export_and_register",
            "check_promotion",
        ],
        "completed",
    )
    assert set(summary["evaluation"]) == {"adapter", "base", "lead_3"}
    registration = summary["registration"]
    assert (registration["name"], registration["version"], registration["created"]) == ("e2e-summarizer", "1", True)
    assert registration["promotion"]["promoted"] is True
    assert "The adapter" in summary["evaluation_verdict"]
    for report in ("validation", "evaluation"):
        page = Path(summary["reports"][report]["file"]).read_text()
        assert summary["run_id"] in page and "data source" in page  # the header says which run it describes
    assert_mlflow_ui_command_works_as_printed(summary)

    # ZenML Model Control Plane <-> MLflow registry, cross-referenced both ways.
    zenml_version = zenml_client.get_model_version("e2e-summarizer", "latest")
    assert zenml_version.run_metadata["mlflow_version"] == "1"
    code, shown = cli_json(capsys, "models", "show", "e2e-summarizer@champion")
    assert code == 0 and shown["version"] == "1" and shown["tags"]["zenml_model_version"] == str(zenml_version.number)
    assert shown["tags"]["zenml_pipeline_run_id"] == summary["run_id"]

    code, listed = cli_json(capsys, "models", "list", "--json")
    (model,) = [m for m in listed if m["name"] == "e2e-summarizer"]
    assert [v["version"] for v in model["versions"]] == ["1"] and "champion" in model["versions"][0]["aliases"]

    text = tmp_path / "paper.txt"
    text.write_text("We study summarisation of rendered pages. We propose a decoder adapter and evaluate it.")
    code, summaries = cli_json(capsys, "summarize", "--model", "models:/e2e-summarizer@champion", str(text), "--json")
    assert code == 0 and isinstance(summaries[str(text)], str) and summaries[str(text)].strip()

    code, downloaded = cli_json(capsys, "models", "download", "e2e-summarizer@champion", "--out", str(tmp_path / "pkg"))
    assert code == 0 and (tmp_path / "pkg" / "inference.py").is_file()
    assert downloaded["adapter_sha256"] == registration["adapter_sha256"]

    # Nothing changed (a scheduled retraining without new data): training and evaluation are cache hits, the
    # same adapter is found registered, and it stays champion.
    code, unchanged = run(capsys)
    assert code == 0, unchanged
    assert {unchanged["steps"][s] for s in ("train_lora", "evaluate_adapter")} == {"cached"}
    assert unchanged["steps"]["export_and_register"] == "completed"
    again = unchanged["registration"]
    assert (again["version"], again["created"], again["adapter_sha256"]) == ("1", False, registration["adapter_sha256"])
    assert again["promotion"]["champion"] == "1" and unchanged["evaluation"] == summary["evaluation"]

    # A training-only change: the data steps are cache hits, training onwards runs again.
    code, second = run(capsys, "train.learning_rate=0.02")
    assert code == 0, second
    assert {second["steps"][s] for s in ("ingest", "render_pages", "validate_dataset")} == {"cached"}
    assert {second["steps"][s] for s in ("train_lora", "evaluate_adapter", "export_and_register")} == {"completed"}
    assert second["registration"]["version"] == "2" and "challenger" in second["registration"]["aliases"]
    assert second["registration"]["promotion"]["reason"]

    # A quality gate the new version cannot pass, with require_promotion: exit code 4, champion kept.
    champion = cli_json(capsys, "models", "show", "e2e-summarizer@champion")[1]["version"]
    code = main(
        [
            "run",
            "--config",
            CONFIG,
            *sum((["--set", s] for s in SMALL), []),
            "--set",
            "train.learning_rate=0.03",
            "--set",
            "register.require_promotion=true",
            "--set",
            "register.margin=1000",
        ]
    )
    captured = capsys.readouterr()
    assert code == 4 and "quality gate: e2e-summarizer v" in captured.err and "was not promoted" in captured.err
    assert "check_promotion" in captured.out
    assert cli_json(capsys, "models", "show", "e2e-summarizer@champion")[1]["version"] == champion


def assert_mlflow_ui_command_works_as_printed(summary):
    """Start the run summary's ``mlflow ui`` command (on a free port) and find each report it points at."""
    command = shlex.split(summary["browse"]["mlflow_ui"])
    assert Path(ROOT, command[0]).is_file() and command[1] == "ui"  # .venv/bin/mlflow, as a user types it
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command[command.index("--port") + 1] = str(port)
    server = subprocess.Popen(
        command, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300  # a loaded 2-core machine can take minutes to start its worker
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "mlflow ui did not start"
                time.sleep(0.5)
        for report, folder in (("validation", "validation"), ("evaluation", "evaluation")):
            run_id = re.search(r"/runs/(\w+)/artifacts$", summary["reports"][report]["mlflow_ui"]).group(1)
            url = f"{base}/ajax-api/2.0/mlflow/artifacts/list?run_id={run_id}&path={folder}"
            with urllib.request.urlopen(url, timeout=30) as response:
                files = [f["path"] for f in json.loads(response.read())["files"]]
            assert f"{folder}/report.html" in files
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
