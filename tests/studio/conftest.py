"""The Studio tests' fixtures: a real Studio (``python -m deepsynth_cli.studio``) on a free port of 127.0.0.1,
over a project folder of its own (the repository's quickstart config in its configs/)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.serving_client import call

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Studio:
    """A started Studio process: its base URL, project folder and stderr."""

    def __init__(self, project: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()):
        self.project, self.port = project, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr = project / "studio.stderr"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deepsynth_cli.studio", "--port", str(self.port), "--project", str(project), *args],
            cwd=project,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=open(self.stderr, "wb"),  # noqa: SIM115 - closed with the process
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"studio exited {self.process.returncode}: {self.stderr.read_text()}")
            try:
                if call(self.url + "/api/presets", timeout=5)[0] == 200:
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"studio did not answer: {self.stderr.read_text()}")

    def call(self, path: str, method: str = "GET", body=None, headers=None, timeout: float = 300):
        """``(status, headers, body)`` of one real HTTP request."""
        return call(self.url + path, method, body, headers, timeout=timeout)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def make_project(folder: Path) -> Path:
    """A project folder with the repository's quickstart config in configs/."""
    (folder / "configs").mkdir(parents=True)
    shutil.copy(ROOT / "configs" / "quickstart.yaml", folder / "configs" / "quickstart.yaml")
    return folder


@pytest.fixture(scope="module")
def start_studio(tmp_path_factory):
    """Callable: (name, token) -> a started :class:`Studio` on a new project folder; all stopped after the module."""
    started: list[Studio] = []

    def start(name: str, token: str = "") -> Studio:
        project = make_project(tmp_path_factory.mktemp(name))
        started.append(Studio(project, env={"DEEPSYNTH_API_TOKEN": token}))
        return started[-1]

    yield start
    for studio in started:
        studio.stop()


@pytest.fixture(scope="module")
def studio(start_studio):
    """A Studio without a token (module-scoped: starting one takes a few seconds)."""
    return start_studio("studio-project")
