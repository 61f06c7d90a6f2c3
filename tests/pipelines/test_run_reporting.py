"""Each run reports itself, and a killed run is closed on the next start (real processes, real ZenML store).

1. Run B stops inside render_pages; run A of the same pipeline starts after it and stops there too;
   B fails while A is still going → B's error and summary name B (ZenML's "last run" would be A).
2. A run is killed with SIGKILL after render_pages wrote its shards → it stays "running" in ZenML
   until the next start, which marks it failed and deletes the shards it left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
WRAPPER = str(Path(__file__).with_name("fault_injection_cli.py"))
DATA_RUN = [
    "run",
    "--config",
    str(ROOT / "configs" / "quickstart.yaml"),
    "--json",
    "--set",
    "pipeline=data",
    "--set",
    "enable_cache=false",
    "--set",
    "ingest.max_documents=3",
    "--set",
    "validate.min_valid_rows=2",
    "--set",
    "render.max_pages=1",
]  # not the sizes of other tests: their runs must not find these outputs cached


def start(fault: str, record: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, WRAPPER, fault, str(record), *DATA_RUN],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )


def first_record(record: Path, proc: subprocess.Popen, timeout_s: float = 300) -> dict:
    """The fault's first record, once the run has reached render_pages."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if record.exists() and record.read_text().strip():
            return json.loads(record.read_text().splitlines()[0])
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before render_pages: {proc.stderr.read()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError("the run never reached render_pages")


def ended(proc: subprocess.Popen) -> tuple[int, dict, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, json.loads(out), err


def test_a_failing_run_reports_itself_while_another_run_of_the_pipeline_is_going(zenml_client, tmp_path):
    first, second = tmp_path / "b.jsonl", tmp_path / "a.jsonl"
    b = start("hold_render", first)
    b_run = first_record(first, b)
    a = start("hold_render", second)
    try:
        a_run = first_record(second, a)  # A was created after B: it is the pipeline's last run
        Path(f"{first}.release").touch()
        code, summary, err = ended(b)
        assert code == 1, err[-3000:]
        assert summary["run_id"] == b_run["run_id"] and summary["run_name"] == b_run["run_name"] != a_run["run_name"]
        assert summary["status"] == "failed" and summary["steps"]["render_pages"] == "failed"
        assert f"render_pages of {b_run['run_name']} failed" in summary["error"]
    finally:
        Path(f"{second}.release").touch()
        a.communicate(timeout=300)


def test_a_killed_run_is_marked_failed_and_its_partial_outputs_removed_on_the_next_start(zenml_client, tmp_path):
    record = tmp_path / "kill.jsonl"
    killed = start("sigkill", record)
    killed.communicate(timeout=300)
    assert killed.returncode == -9
    lost = json.loads(record.read_text().splitlines()[0])
    assert (Path(lost["output_dir"]) / "manifest.json").is_file()  # the shards it wrote are still there
    assert str(zenml_client.get_pipeline_run(lost["run_id"]).status.value) == "running"

    code, summary, err = ended(start("none", tmp_path / "none.jsonl"))
    assert code == 0, err[-3000:]
    assert f"run {lost['run_name']} ({lost['run_id']}) was interrupted" in err
    closed = zenml_client.get_pipeline_run(lost["run_id"])
    assert str(closed.status.value) == "failed"
    assert str(closed.steps["render_pages"].status.value) == "failed"
    assert not Path(lost["output_dir"]).exists()
    assert summary["run_id"] != lost["run_id"] and summary["status"] == "completed"
