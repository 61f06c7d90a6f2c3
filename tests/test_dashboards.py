"""``deepsynth ui``: MLflow's UI and ZenML's dashboard start on the home's stores and a real browser loads both.

The browser is Debian's Chromium in headless mode (``make install`` installs it): it runs each page's
JavaScript and the DOM it dumps must show this home's own experiment run and the dashboard itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]
SET_UP = str(ROOT / "tests" / "support" / "set_up_store.py")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rendered_text(url: str) -> str:
    """The visible text of ``url`` after a headless Chromium ran its scripts."""
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    dom = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", dom).split())


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A set-up home whose MLflow store holds one experiment with one run."""
    home = tmp_path_factory.mktemp("ui") / "home"
    env = {**os.environ, "DEEPSYNTH_HOME": str(home), "ZENML_CONFIG_PATH": str(home / "zenml")}
    out = subprocess.run([sys.executable, SET_UP], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    from mlflow import MlflowClient

    client = MlflowClient(json.loads(out.stdout.strip().splitlines()[-1])["tracking_uri"])
    experiment = client.create_experiment("browse-check")
    client.set_terminated(client.create_run(experiment, run_name="visible-in-the-ui").info.run_id)
    return home, env, experiment


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make install puts it there)")
def test_deepsynth_ui_serves_both_dashboards_to_a_browser_and_stops_on_sigterm(home):
    home, env, experiment = home
    mlflow_port, zenml_port = free_port(), free_port()
    ui = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deepsynth_cli",
            "ui",
            "--json",
            "--mlflow-port",
            str(mlflow_port),
            "--zenml-port",
            str(zenml_port),
        ],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        lines = []
        for _ in range(200):  # the addresses are printed once both servers answer
            line = ui.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("}"):
                break
        addresses = json.loads("".join(lines))
        assert addresses["mlflow_ui"] == f"http://127.0.0.1:{mlflow_port}"
        assert addresses["zenml_dashboard"] == f"http://127.0.0.1:{zenml_port}"

        mlflow_page = rendered_text(f"{addresses['mlflow_ui']}/#/experiments/{experiment}/runs")
        assert "browse-check" in mlflow_page and "visible-in-the-ui" in mlflow_page
        zenml_page = rendered_text(addresses["zenml_dashboard"])
        assert "ZenML" in zenml_page and "Add your account details" not in zenml_page
    finally:
        ui.send_signal(signal.SIGTERM)
        _out, err = ui.communicate(timeout=120)
    assert ui.returncode == 0, err[-3000:]
    for port in (mlflow_port, zenml_port):  # both servers are gone
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
