"""The Studio's job queue with real processes: order, one at a time, cancel by SIGTERM (143), a restarted Studio."""

from __future__ import annotations

import os
import sys
import time

import pytest

from deepsynth_cli.studio.jobs import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Jobs

#: A command that prints JSON, logs to stderr, and exits 143 on SIGTERM as deepsynth run does after a checkpoint.
SCRIPT = """
import json, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print("checkpoint saved", file=sys.stderr, flush=True), sys.exit(143)))
print("started", file=sys.stderr, flush=True)
time.sleep(float(sys.argv[1]))
print(json.dumps({"slept": float(sys.argv[1])}))
"""


def command(seconds: float) -> list[str]:
    return [sys.executable, "-c", SCRIPT, str(seconds)]


def wait_for(jobs: Jobs, job_id: str, states: tuple[str, ...], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs.tick()
        job = jobs.get(job_id)
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{job_id} still {jobs.get(job_id)['state']}")


def wait_for_log(jobs: Jobs, job_id: str, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in jobs.log_tail(job_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert text in jobs.log_tail(job_id)


def test_jobs_run_one_at_a_time_in_order_and_keep_their_result(tmp_path):
    jobs = Jobs(tmp_path / "jobs", tmp_path)
    first, second = jobs.new_id(), jobs.new_id() + "b"
    jobs.submit(first, "run", "first", command(0.5))
    jobs.submit(second, "run", "second", command(0.1))
    assert jobs.get(first)["state"] == RUNNING and jobs.get(second)["state"] == QUEUED
    done = wait_for(jobs, first, (SUCCEEDED, FAILED))
    assert done["state"] == SUCCEEDED and done["exit_code"] == 0 and done["result"] == {"slept": 0.5}
    assert "started" in jobs.log_tail(first)
    finished = wait_for(jobs, second, (SUCCEEDED, FAILED))
    assert finished["started"] >= done["finished"] - 1.5  # started only after the first had ended
    assert [j["id"] for j in jobs.all()] == [second, first]


def test_cancel_sends_sigterm_and_records_exit_143(tmp_path):
    jobs = Jobs(tmp_path / "jobs", tmp_path)
    running, queued = jobs.new_id(), jobs.new_id() + "q"
    jobs.submit(running, "run", "long", command(60))
    jobs.submit(queued, "run", "waiting", command(60))
    wait_for_log(jobs, running, "started")
    assert jobs.cancel(queued)["state"] == CANCELLED  # a queued job is dropped, never started
    jobs.cancel(running)
    job = wait_for(jobs, running, (SUCCEEDED, FAILED, CANCELLED))
    assert (job["state"], job["exit_code"]) == (CANCELLED, 143)
    assert "checkpoint saved" in jobs.log_tail(running)
    assert jobs.get(queued)["started"] is None


def test_a_job_outlives_the_studio_and_a_new_one_finds_its_outcome(tmp_path):
    jobs = Jobs(tmp_path / "jobs", tmp_path)
    job_id = jobs.new_id()
    pid = jobs.submit(job_id, "run", "survivor", command(1.5))["pid"]
    assert os.getsid(pid) == pid != os.getsid(0)  # the runner has a session of its own
    del jobs  # the Studio goes away while the job runs
    restarted = Jobs(tmp_path / "jobs", tmp_path)
    assert restarted.get(job_id)["state"] == RUNNING
    job = wait_for(restarted, job_id, (SUCCEEDED, FAILED))
    assert job["state"] == SUCCEEDED and job["result"] == {"slept": 1.5}


@pytest.mark.parametrize("signal_exit", [False, True])
def test_failures_are_recorded_with_their_exit_code(tmp_path, signal_exit):
    jobs = Jobs(tmp_path / "jobs", tmp_path)
    job_id = jobs.new_id()
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)" if signal_exit else "raise SystemExit(2)"
    jobs.submit(job_id, "run", "fails", [sys.executable, "-c", code])
    job = wait_for(jobs, job_id, (SUCCEEDED, FAILED, CANCELLED))
    assert (job["state"], job["exit_code"]) == (FAILED, 137 if signal_exit else 2)
