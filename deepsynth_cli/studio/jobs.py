"""The Studio's job queue: pipeline runs and merges as processes that survive the browser and the Studio.

A job is a folder under ``<home>/studio/jobs/<id>/``: ``job.json`` (what to run and its state, written by
the Studio), ``log`` (stderr), ``stdout`` (the command's JSON result) and ``exit_code`` (written by
:mod:`deepsynth_cli.studio.runner` when the command ends). At most ``max_running`` jobs run at once (one by
default: runs share the store and the CPU); the others wait in order. A restarted Studio reads the folders
again: a running job is found by its runner's process id and its outcome by ``exit_code``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from deepsynth.env import process_alive
from deepsynth.errors import Terminated

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


class Jobs:
    """Job records under ``root``, started in order, at most ``max_running`` at once.

    Args:
        root: ``<home>/studio/jobs``.
        cwd: Where commands run (the project folder).
        max_running: Jobs running at once.
    """

    def __init__(self, root: Path, cwd: Path, max_running: int = 1):
        self.root, self.cwd, self.max_running = root, cwd, max_running
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._children: dict[str, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self, job: dict[str, Any]) -> None:
        folder = self.root / job["id"]
        temporary = folder / "job.json.tmp"
        temporary.write_text(json.dumps(job, indent=1))
        temporary.replace(folder / "job.json")

    def _read(self, job_id: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / job_id / "job.json").read_text())
        except (OSError, ValueError):
            return None

    @staticmethod
    def new_id() -> str:
        """A new job id (sortable by time)."""
        return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]

    def submit(self, job_id: str, kind: str, title: str, argv: list[str], **extra: Any) -> dict:
        """Queue a command under ``job_id`` (:meth:`new_id`); returns its record (started at once if a slot is free)."""
        (self.root / job_id).mkdir()
        job = {
            "id": job_id,
            "kind": kind,
            "title": title,
            "argv": argv,
            "cwd": str(self.cwd),
            "env": {},
            "state": QUEUED,
            "created": time.time(),
            "started": None,
            "finished": None,
            "exit_code": None,
            "pid": None,
            **extra,
        }
        with self._lock:
            self._write(job)
            self.tick()
            return self._read(job_id) or job

    def all(self) -> list[dict[str, Any]]:
        """Every job, newest first."""
        with self._lock:
            found = [self._read(p.name) for p in self.root.iterdir() if p.is_dir()]
        return sorted((j for j in found if j), key=lambda j: j["created"], reverse=True)

    def get(self, job_id: str) -> dict[str, Any] | None:
        """One job's record with its result (the command's JSON output) once it has finished."""
        job = self._read(job_id)
        if job and job["state"] in FINISHED:
            text = (self.root / job_id / "stdout").read_text(errors="replace") if job["started"] else ""
            try:
                job["result"] = json.loads(text) if text.strip() else None
            except ValueError:
                job["result"] = None
        return job

    def log_tail(self, job_id: str, lines: int = 200) -> str:
        """The last ``lines`` lines of the job's stderr."""
        path = self.root / job_id / "log"
        if not path.is_file():
            return ""
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 200_000))
            return b"\n".join(handle.read().splitlines()[-lines:]).decode(errors="replace")

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """A queued job is dropped; a running one gets SIGTERM (its command checkpoints and exits 143)."""
        with self._lock:
            job = self._read(job_id)
            if job is None or job["state"] in FINISHED:
                return job
            if job["state"] == QUEUED:
                job.update(state=CANCELLED, finished=time.time())
                self._write(job)
            elif job["pid"] and process_alive(job["pid"]):
                os.killpg(job["pid"], signal.SIGTERM)  # the runner ignores it; the command takes the SIGTERM path
                job["cancel_requested"] = time.time()
                self._write(job)
            return job

    def tick(self) -> None:
        """Record finished jobs and start queued ones while slots are free."""
        with self._lock:
            jobs = sorted(self.all(), key=lambda j: j["created"])
            running = 0
            for job in jobs:
                if job["state"] != RUNNING:
                    continue
                child = self._children.get(job["id"])
                if child is not None:
                    child.poll()  # reap the runner when this Studio started it
                code_file = self.root / job["id"] / "exit_code"
                if code_file.is_file():
                    code = int(code_file.read_text())
                    state = SUCCEEDED if code == 0 else CANCELLED if code == Terminated.exit_code else FAILED
                    job.update(state=state, exit_code=code, finished=time.time())
                    self._children.pop(job["id"], None)
                    self._write(job)
                elif (child is not None and child.returncode is not None) or not (
                    job["pid"] and process_alive(job["pid"])
                ):
                    job.update(
                        state=FAILED, finished=time.time(), error="the job's runner process ended without a code"
                    )
                    self._write(job)
                else:
                    running += 1
            for job in jobs:
                if job["state"] == QUEUED and running < self.max_running:
                    self._start(job)
                    running += 1

    def _start(self, job: dict[str, Any]) -> None:
        folder = self.root / job["id"]
        runner = [sys.executable, "-m", "deepsynth_cli.studio.runner", str(folder)]
        with open(folder / "log", "ab") as log:
            child = subprocess.Popen(runner, cwd=self.cwd, stdout=log, stderr=log, start_new_session=True)
        self._children[job["id"]] = child
        job.update(state=RUNNING, started=time.time(), pid=child.pid)
        self._write(job)

    def start_background(self, interval_s: float = 1.0) -> None:
        """Tick every ``interval_s`` in a daemon thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.tick()
                except Exception as exc:  # noqa: BLE001 - keep the queue alive; the next tick retries
                    print(f"studio: job queue: {exc}", file=sys.stderr)

        self._thread = threading.Thread(target=loop, name="studio-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking (jobs keep running)."""
        self._stop.set()
