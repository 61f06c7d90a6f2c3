"""Names and aliases that would break a registry filter or an MLflow call: refused up front with the rule,
and filters quote whatever names a registry already holds (issue 27 items 12 and 21)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from support.adapters import mlflow_store_at

from deepsynth.errors import ConfigError
from deepsynth.registry import promote, register_package
from deepsynth.registry.versions import MODEL_NAME_PATTERN, name_filter, registry_index, search_versions
from pipelines.config_loading import load_run_config

ROOT = Path(__file__).parents[2]
ODD_NAMES = ["x'y", 'x"y', "x'\"y", "a\\b", "a%b", "a_b", "plain"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A registry that already holds models with filter-breaking names (made by another tool: MLflow allows them)."""
    root = tmp_path_factory.mktemp("names")
    with mlflow_store_at(root, "names") as uri:
        client = mlflow.MlflowClient()
        run = client.create_run(mlflow.get_experiment_by_name("names").experiment_id)
        for i, name in enumerate(ODD_NAMES):
            client.create_registered_model(name)
            for _ in range(i % 2 + 1):  # one or two versions each, so a wrong filter shows
                client.create_model_version(name, f"{run.info.artifact_uri}/m", run.info.run_id)
        yield uri


@pytest.mark.parametrize("name", ["x'y", "x y", "", "-lead", "a" * 129, "x/y", "x:y", "ü"])
def test_a_model_name_outside_the_pattern_is_refused_by_the_config_check(name):
    with pytest.raises(ConfigError) as refused:
        load_run_config(None, [f"register.model_name={json.dumps(name)}"], check=False)
    assert refused.value.exit_code == 2 and refused.value.key == "register.model_name"
    assert "not a usable registered model name" in str(refused.value) and MODEL_NAME_PATTERN in str(refused.value)


@pytest.mark.parametrize("name", ["deepsynth-summarizer", "Summarizer_v2.1", "7b"])
def test_ordinary_model_names_pass(name):
    assert load_run_config(None, [f"register.model_name={name}"], check=False).register.model_name == name


def test_a_run_with_an_apostrophe_in_the_model_name_exits_2_before_anything_runs(capsys):
    from deepsynth_cli import main

    config = ROOT / "configs" / "quickstart.yaml"
    assert main(["run", "--config", str(config), "--set", "register.model_name=x'y", "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error.startswith("--set register.model_name: ") and "x'y" in error
    assert "is not a usable registered model name" in error and MODEL_NAME_PATTERN in error


def test_register_package_refuses_such_a_name_and_creates_nothing(store, tmp_path):
    with pytest.raises(ConfigError, match="not a usable registered model name"):
        register_package(tmp_path, "new'model")
    assert "new'model" not in registry_index()


def test_filters_quote_every_name_a_registry_holds(store):
    client = mlflow.MlflowClient()
    index = registry_index(client)
    for i, name in enumerate(ODD_NAMES):
        found = search_versions(client, name)
        assert {mv.name for mv in found} == {name} and len(found) == i % 2 + 1
        assert index[name]["versions"] == [str(v) for v in range(1, i % 2 + 2)]
    assert name_filter("x'y") == 'name = "x\'y"' and name_filter("x'\"y") is None


def test_a_bad_alias_is_one_clear_error(store):
    for alias in ["bad alias!", "latest", "v3", ""]:
        with pytest.raises(ConfigError, match="alias") as refused:
            promote("plain", "1", alias=alias)
        assert refused.value.exit_code == 2
    assert mlflow.MlflowClient().get_registered_model("plain").aliases == {}


def test_models_promote_with_a_bad_alias_exits_2_with_one_message(zenml_client):
    """The command on the session's home (its stack's registry), as a user runs it."""
    from pipelines.stores import read_record

    uri = read_record()["tracking_uri"]
    home_registry = mlflow.MlflowClient(uri, uri)  # a registry URI left set globally must not be used
    run = home_registry.create_run(home_registry.create_experiment("promote-alias"))
    home_registry.create_registered_model("promote-alias")
    home_registry.create_model_version("promote-alias", f"{run.info.artifact_uri}/m", run.info.run_id)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}  # the home's registry, not a URI
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepsynth_cli",
            "models",
            "promote",
            "promote-alias",
            "1",
            "--alias",
            "bad alias!",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == {
        "error": "alias 'bad alias!': use 1-255 letters, digits, '_' or '-' (pattern [A-Za-z0-9_-]{1,255}), "
        "e.g. champion",
        "exit_code": 2,
    }
    assert "Traceback" not in proc.stderr and "MlflowException" not in proc.stderr
    assert home_registry.get_registered_model("promote-alias").aliases == {}
