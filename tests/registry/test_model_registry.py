"""MLflow registry on a real sqlite store: register, idempotency, load back, promotion gate, browse, and
MLflow's own loaders (pyfunc load_model at @champion, ``mlflow models serve`` over HTTP)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from safetensors.torch import load_file, save_file
from support.adapters import mlflow_store_at
from support.fresh_venv import fresh_python, run

from deepsynth.errors import ConfigError
from deepsynth.export import export_adapter
from deepsynth.export.runtime import copy_library
from deepsynth.inference import GenerationConfig, Summarizer
from deepsynth.registry import (
    ModelRef,
    download,
    list_models,
    parse_ref,
    promote,
    promote_if_better,
    register_package,
    show,
)

NAME = "deepsynth-test"
TEXT = "The museum opens a new wing in June. It shows modern art. Tickets go on sale next week."
OTHER = "The river rose overnight after heavy rain. Two bridges closed. Schools open late on Friday."
# Recorded in the exports: every loader decodes with the package's settings, and 16 tokens (not the
# default 128) keep each of the module's decodes short.
RECORDED = GenerationConfig(max_new_tokens=16)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    with mlflow_store_at(root, "registry-tests"):
        yield root


@pytest.fixture(scope="module")
def exports(trained_adapter, rendered_dataset, tmp_path_factory):
    """Two real adapters: the trained one and a changed copy (lora_B halved): different sha256."""
    root = tmp_path_factory.mktemp("exports")
    other = root / "other_adapter"
    other.mkdir()
    for item in trained_adapter.iterdir():
        if item.is_file():
            (other / item.name).write_bytes(item.read_bytes())
    tensors = load_file(str(trained_adapter / "adapter_model.safetensors"))
    halved = {k: v * 0.5 if "lora_B" in k else v for k, v in tensors.items()}
    save_file(halved, str(other / "adapter_model.safetensors"))
    generation = RECORDED.to_dict()
    first = export_adapter(
        trained_adapter, root / "first", dataset=rendered_dataset.path, metrics={"rouge_l": 0.2}, generation=generation
    )
    second = export_adapter(
        other, root / "second", dataset=rendered_dataset.path, metrics={"rouge_l": 0.3}, generation=generation
    )
    return first, second


@pytest.fixture(scope="module")
def first_version(store, exports):
    return register_package(
        exports[0].output_dir,
        NAME,
        {"owner": "tests"},
        {"rouge_l": 0.2, "rouge_1": 0.25},
        pipeline_run_id="zenml-run-1",
        commit="abc123",
    )


def test_register_tags_and_challenger(first_version, exports):
    assert first_version["created"] and first_version["version"] == "1"
    info = show(f"{NAME}/1")
    assert info["aliases"] == ["challenger"]
    assert info["metrics"] == {"rouge_l": 0.2, "rouge_1": 0.25}
    tags = info["tags"]
    assert tags["base_model"] == "tiny" and tags["dataset_hash"] == "test-content-hash"
    assert tags["zenml_pipeline_run_id"] == "zenml-run-1" and tags["git_commit"] == "abc123"
    assert tags["adapter_sha256"] == exports[0].adapter_sha256 and tags["owner"] == "tests"


def test_registering_the_same_adapter_twice_makes_no_new_version(first_version, exports):
    again = register_package(exports[0].output_dir, NAME, metrics={"rouge_l": 0.2})
    assert again["created"] is False and again["version"] == first_version["version"]
    assert [v["version"] for v in show(NAME)["versions"]] == ["1"]


def test_a_registration_racing_another_of_the_same_adapter_keeps_the_older_version(store, exports, monkeypatch):
    """The other process registered this adapter between our check and our create: ours is removed."""
    from deepsynth.registry import register

    name = f"{NAME}-race"
    first = register_package(exports[0].output_dir, name)

    real, calls = register._find_by_sha, []

    def misses_once(name, sha):
        calls.append(sha)
        return None if len(calls) == 1 else real(name, sha)

    monkeypatch.setattr(register, "_find_by_sha", misses_once)
    raced = register_package(exports[0].output_dir, name)
    assert len(calls) == 2  # the check missed; the reconciliation after creating found version 1
    assert raced["created"] is False and raced["version"] == first["version"] == "1"
    assert [v["version"] for v in show(name)["versions"]] == ["1"]


def test_a_registration_killed_before_its_alias_is_finished_by_the_rerun(store, exports):
    """A run killed right after creating its version leaves it without ``challenger``: the rerun (same adapter)
    sets it; a version that holds an alias (here promoted to champion) keeps what it has."""
    name = f"{NAME}-killed"
    first = register_package(exports[0].output_dir, name)
    client = mlflow.MlflowClient()
    client.delete_registered_model_alias(name, "challenger")  # the state the killed run left
    assert client.get_model_version(name, first["version"]).aliases == []
    rerun = register_package(exports[0].output_dir, name)
    assert (rerun["created"], rerun["version"], rerun["aliases"]) == (False, first["version"], ["challenger"])
    assert show(f"{name}@challenger")["version"] == first["version"]
    promote(name, first["version"])
    client.delete_registered_model_alias(name, "challenger")
    kept = register_package(exports[0].output_dir, name)
    assert kept["aliases"] == ["champion"] and sorted(show(name)["versions"][0]["aliases"]) == ["champion"]


def test_versions_load_back_by_number_and_alias(first_version, exports, shared_home):
    gen = GenerationConfig(max_new_tokens=10)
    local = Summarizer.load(exports[0].output_dir, home=shared_home, generation=gen).summarize_text(TEXT)
    by_number = Summarizer.load(ModelRef.parse(f"models:/{NAME}/1"), home=shared_home, generation=gen)
    by_alias = Summarizer.load(ModelRef.parse(f"models:/{NAME}@challenger"), home=shared_home, generation=gen)
    by_number, by_alias = by_number.summarize_text(TEXT), by_alias.summarize_text(TEXT)
    assert local == by_number == by_alias and local
    pyfunc = mlflow.pyfunc.load_model(f"models:/{NAME}@challenger")
    assert len(pyfunc.predict(pd.DataFrame({"text": [TEXT, TEXT]}))) == 2


def test_promotion_gate(first_version, exports):
    first = promote_if_better(NAME, "1", margin=0.05)
    assert first["promoted"] and first["champion"] == "1"
    second = register_package(exports[1].output_dir, NAME, metrics={"rouge_l": 0.22})
    assert second["version"] == "2" and show(f"{NAME}@challenger")["version"] == "2"
    kept = promote_if_better(NAME, "2", margin=0.05)  # 0.22 does not beat 0.2 by more than 0.05
    assert not kept["promoted"] and "champion kept" in kept["reason"] and show(f"{NAME}@champion")["version"] == "1"
    mlflow.MlflowClient().set_model_version_tag(NAME, "2", "metric.rouge_1", "nan")
    refused = promote_if_better(NAME, "2", margin=0.0)
    assert not refused["promoted"] and "non-finite" in refused["reason"]
    mlflow.MlflowClient().set_model_version_tag(NAME, "2", "metric.rouge_1", "0.4")
    won = promote_if_better(NAME, "2", margin=0.01)
    assert won["promoted"] and won["previous_champion"] == "1" and show(f"{NAME}@champion")["version"] == "2"


def test_a_pinned_reference_keeps_its_version_and_sha256_when_the_alias_moves(first_version, exports, tmp_path):
    """``ModelRef.pin`` resolves an alias once: a later download is that version, whatever the alias names then."""
    second = register_package(exports[1].output_dir, NAME, metrics={"rouge_l": 0.22})["version"]
    promote(NAME, "1", "pin-test")
    pinned = ModelRef.parse(f"models:/{NAME}@pin-test").pin()
    assert (pinned.name, pinned.version, pinned.alias) == (NAME, "1", "pin-test")
    assert pinned.sha256 == exports[0].adapter_sha256 and pinned.uri == f"models:/{NAME}/1"
    promote(NAME, second, "pin-test")
    got = pinned.download(tmp_path / "dl")
    assert (got["version"], got["adapter_sha256"]) == ("1", exports[0].adapter_sha256)
    assert ModelRef.parse(f"models:/{NAME}@pin-test").pin().version == second != "1"
    client = mlflow.MlflowClient()
    client.set_model_version_tag(NAME, "1", "adapter_sha256", "0" * 64)  # the pinned version no longer matches
    try:
        with pytest.raises(ConfigError, match=f"version 1 no longer holds adapter {exports[0].adapter_sha256}"):
            pinned.fetch(tmp_path / "again")
    finally:
        client.set_model_version_tag(NAME, "1", "adapter_sha256", exports[0].adapter_sha256)


def test_browse_promote_download(first_version, exports, tmp_path):
    listing = list_models()
    json.dumps(listing)
    model = next(m for m in listing if m["name"] == NAME)
    assert model["versions"][0]["version"] == "1" and model["versions"][0]["created"]
    assert model["versions"][0]["metrics"]["rouge_l"] == 0.2
    moved = promote(NAME, "1", "stable")
    assert "stable" in moved["aliases"]
    got = download(f"{NAME}@stable", tmp_path / "dl")
    assert got["version"] == "1" and got["adapter_sha256"] == exports[0].adapter_sha256
    assert (tmp_path / "dl" / "inference.py").is_file()
    assert parse_ref("models:/a-b@champion") == ("a-b", None, "champion")
    assert parse_ref("a-b/3") == ("a-b", "3", None) and parse_ref("a-b") == ("a-b", None, None)


@pytest.fixture(scope="module")
def champion(store, exports):
    """The first export registered under its own name and made @champion: a ``models:/`` URI."""
    name = f"{NAME}-loaders"
    promote(name, register_package(exports[0].output_dir, name)["version"])
    return f"models:/{name}@champion"


@pytest.fixture(scope="module")
def expected(exports, shared_home):
    """The library's summaries of [TEXT, OTHER] with the package's recorded settings (the pyfunc's too)."""
    library = Summarizer.load(exports[0].output_dir, home=shared_home)
    assert library.generation == RECORDED
    return library.summarize_texts([TEXT, OTHER])


FRESH_ENV_TEST = "test_a_fresh_environment_from_the_logged_requirements_loads_and_predicts"


@pytest.fixture(scope="module", autouse=True)
def fresh_env(request, tmp_path_factory):
    """A future of the python of a virtualenv made from the champion's logged requirements (None when the test
    that uses it is not selected). Built in a thread from the module's first test on: pip spends half its
    time waiting on the package index, so the module's other tests run meanwhile."""
    if not any(item.name == FRESH_ENV_TEST for item in request.session.items):
        yield None
        return
    requirements = Path(mlflow.pyfunc.get_model_dependencies(request.getfixturevalue("champion")))
    with ThreadPoolExecutor(1) as pool:  # leaving waits for the build: nothing is left writing after the module
        yield pool.submit(fresh_python, tmp_path_factory.mktemp("fresh-env") / "venv", requirements)


def test_logged_requirements_are_the_packages_public_pins_and_no_code_is_logged(champion, exports):
    """The version's loader is the installed library's verifying module; nothing importable is logged with it."""
    logged = Path(mlflow.pyfunc.get_model_dependencies(champion)).read_text().splitlines()
    package = (exports[0].output_dir / "requirements.txt").read_text().splitlines()
    assert {ln for ln in package if ln and not ln.startswith("#")} <= set(logged)
    names = {re.split(r"[=<>!~;\[ ]", ln, maxsplit=1)[0].lower() for ln in logged if ln.strip()}
    assert not names & {"deepsynth-pipelines", "zenml", "great-expectations", "datasets"}
    local = Path(mlflow.artifacts.download_artifacts(champion))
    flavor = mlflow.models.Model.load(str(local / "MLmodel")).flavors["python_function"]
    assert flavor["loader_module"] == "deepsynth.registry.pyfunc_loader" and not flavor.get("code")
    assert flavor["data"] == "data/package" and (local / "data" / "package" / "manifest.json").is_file()
    assert not (local / "code").exists() and not list(local.glob("*.py"))


def test_pyfunc_load_model_at_champion_predicts_summaries(champion, expected):
    got = mlflow.pyfunc.load_model(champion).predict(pd.DataFrame({"text": [TEXT, OTHER]}))
    assert list(got) == expected and all(expected)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def test_mlflow_models_serve_answers_an_http_request(champion, expected, tmp_path):
    port = _free_port()
    bin_dir = Path(sys.executable).parent  # mlflow runs uvicorn from PATH: as in an activated virtualenv
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    mlflow_cli = bin_dir / "mlflow"
    with open(tmp_path / "serve.log", "wb") as log:
        server = subprocess.Popen(
            [
                str(mlflow_cli),
                "models",
                "serve",
                "-m",
                champion,
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "1",
            ],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping within 300 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.25)
        answer = _post(
            f"http://127.0.0.1:{port}/invocations",
            {"dataframe_split": {"columns": ["text"], "data": [[TEXT], [OTHER]]}},
        )
        assert answer["predictions"] == expected
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker, started by this test
        server.wait(timeout=60)


# Run in the fresh environment: load the registered model with MLflow's own loader and print its summaries.
PREDICT_IN_FRESH_ENV = """
import json, sys
import mlflow, pandas
model = mlflow.pyfunc.load_model(sys.argv[1])
print(json.dumps(list(model.predict(pandas.DataFrame({"text": sys.argv[2:]})))))
"""


def test_a_fresh_environment_from_the_logged_requirements_loads_and_predicts(champion, expected, fresh_env, tmp_path):
    """What a user of the registry does: a virtualenv from the model's logged requirements (``fresh_env``) and the
    deepsynth library (the trusted loader: here a copy of the installed one on PYTHONPATH), then pyfunc."""
    python = fresh_env.result()
    installed = {line.split("==")[0].lower() for line in run([python, "-m", "pip", "freeze"]).splitlines()}
    assert "mlflow" in installed and not installed & {"zenml", "great-expectations", "deepsynth-pipelines"}
    library = copy_library(tmp_path / "library").parent
    env = {
        "PYTHONPATH": str(library),
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
        "MLFLOW_REGISTRY_URI": mlflow.get_registry_uri(),
    }  # where the champion was registered
    out = run([python, "-c", PREDICT_IN_FRESH_ENV, champion, TEXT, OTHER], cwd=tmp_path, env=env, timeout=600)
    assert json.loads(out.strip().splitlines()[-1]) == expected
