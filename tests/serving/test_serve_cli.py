"""``deepsynth serve`` as users start it: a real process, one JSON document on stdout, HTTP, SIGTERM;
the config file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.serving_client import TEXT, Served, call

from deepsynth.errors import ConfigError
from deepsynth.serving.config import ServeConfig

CONFIG = Path(__file__).parents[2] / "configs" / "serving" / "serve.yaml"


def deepsynth(*args, home):
    return [sys.executable, "-m", "deepsynth_cli", *args], {**os.environ, "DEEPSYNTH_HOME": str(home)}


@pytest.mark.slow
def test_serve_prints_one_json_document_answers_and_stops_cleanly_on_sigterm(packages, shared_home, alone):
    served = Served(
        *deepsynth(
            "serve",
            "--model",
            f"first={packages[0].package_path}",
            "--config",
            str(CONFIG),
            "--port",
            "0",
            "--poll-interval-s",
            "0",
            "--json",
            home=shared_home,
        )
    )
    try:
        summary = served.document()
        assert summary["url"].startswith("http://127.0.0.1:") and summary["adapters"][0]["name"] == "first"
        assert call(f"{summary['url']}/readyz")[0] == 200 and call(f"{summary['url']}/healthz")[0] == 200
        status, _, body = call(f"{summary['url']}/v1/summarize", "POST", {"text": TEXT, "max_new_tokens": 6})
        assert status == 200 and body["summary"] == alone(0, text=TEXT)
    finally:
        code, stderr = served.stop()
    assert code == 0 and "stopped (SIGTERM)" in stderr
    assert json.loads("".join(served.lines)) == summary  # nothing else on stdout
    assert '"GET /healthz' not in stderr and '"POST /v1/summarize' not in stderr  # no access log by default


@pytest.mark.slow
def test_serve_resolves_a_registry_alias_through_mlflow_tracking_uri(mlflow_store, packages, shared_home):
    from deepsynth.registry import promote, register_package

    version = register_package(packages[1].output_dir, "deepsynth-serve-cli", commit="tests")["version"]
    promote("deepsynth-serve-cli", version)
    argv, env = deepsynth(
        "serve",
        "--model",
        "models:/deepsynth-serve-cli@champion",
        "--port",
        "0",
        "--json",
        "--access-log",
        home=shared_home,
    )
    served = Served(argv, {**env, "MLFLOW_TRACKING_URI": mlflow_store})
    try:
        document = served.document()
        (info,) = document["adapters"]
        assert call(f"{document['url']}/healthz")[0] == 200
    finally:
        code, stderr = served.stop()
    assert (info["version"], info["alias"], info["sha256"]) == (version, "champion", packages[1].adapter_sha256)
    assert code == 0 and '"GET /healthz HTTP/1.1" 200' in stderr  # --access-log: one line per request


def test_serving_a_trainer_folder_is_refused_with_one_message(second_adapter, shared_home):
    argv, env = deepsynth("serve", "--model", str(second_adapter), "--port", "0", "--json", home=shared_home)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2 and json.loads(proc.stdout)["exit_code"] == 2
    assert "not an export package" in proc.stderr and "Traceback" not in proc.stderr


def test_the_serve_config_documents_every_knob_and_matches_the_defaults(tmp_path):
    lines = CONFIG.read_text().splitlines()
    assert "deepsynth serve --config" in lines[0]
    knobs = [ln for ln in lines if ":" in ln and not ln.lstrip().startswith("#") and not ln.rstrip().endswith(":")]
    assert knobs and all("#" in ln for ln in knobs)
    assert ServeConfig.from_yaml(CONFIG) == ServeConfig()
    typo = tmp_path / "serve.yaml"
    typo.write_text("serve:\n  max_batch: 4\n")
    with pytest.raises(ConfigError, match=r"serve\.yaml: max_batch: unknown key \(did you mean 'max_batch_size'\?\)"):
        ServeConfig.from_yaml(typo)
    typo.write_text("serve:\n  max_queue: 0\n")
    with pytest.raises(ConfigError, match="serve.max_queue: must be > 0"):
        ServeConfig.from_yaml(typo)


@pytest.mark.slow
def test_a_killed_server_leaves_no_extracted_packages_behind(packages, shared_home):
    """Packages are extracted under <home>/serve-tmp/<pid>-*; after kill -9 the next server removes them."""
    from deepsynth.serving.scratch import SCRATCH_DIR, scratch_root

    served = Served(
        *deepsynth("serve", "--model", f"first={packages[0].package_path}", "--port", "0", "--json", home=shared_home)
    )
    served.document()
    pid = served.proc.pid
    left = list((Path(shared_home) / SCRATCH_DIR).glob(f"{pid}-*"))
    assert left and any(f for d in left for f in d.rglob("adapter_model.safetensors"))  # the extracted zip
    served.proc.kill()  # SIGKILL: no clean-up of its own runs
    served.proc.wait(timeout=60)
    assert all(d.exists() for d in left)
    scratch_root(shared_home)  # what every server does as it starts
    assert not any(d.exists() for d in left)
