"""Stack recipes: each parses, names flavors ZenML knows, validates against the flavor's config
class, and registers into a real (temp) ZenML store through `deepsynth stack register`."""

from __future__ import annotations

import pytest

from deepsynth.errors import ConfigError
from deepsynth_cli import main
from pipelines import stack_recipes

RECIPES = sorted(stack_recipes.RECIPES.glob("*.yaml"))
ENV = {
    "KUBE_CONTEXT": "gpu-cluster",
    "DEEPSYNTH_S3_BUCKET": "deepsynth-artifacts",
    "DEEPSYNTH_GCS_BUCKET": "deepsynth-artifacts",
    "DEEPSYNTH_REGISTRY": "registry.example.com/deepsynth",
    "MLFLOW_TRACKING_URI": "https://mlflow.example.com",
    "MLFLOW_TRACKING_USERNAME": "ci",
    "MLFLOW_TRACKING_PASSWORD": "s3cret",
}


def test_there_are_kubernetes_and_local_recipes():
    assert {p.stem for p in RECIPES} >= {"local-docker", "k8s-gpu-s3", "k8s-gpu-gcs"}


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_parses_names_known_flavors_and_validates(path):
    recipe = stack_recipes.load_recipe(path.stem)
    lines = path.read_text().splitlines()
    assert any("deepsynth stack register" in line for line in lines[:4]), "launch command in the header"
    for component in recipe.components:
        cls, integration = stack_recipes.flavor_class(component)
        assert cls().name == component.flavor and integration
    stack_recipes.check_recipe(recipe, environ=ENV)  # pydantic-validates every configuration
    assert recipe.env_vars() <= set(ENV)


def test_kubernetes_recipe_sends_gpu_steps_to_gpu_nodes_and_tracks_remotely():
    recipe = stack_recipes.load_recipe("k8s-gpu-s3")
    by_type = {c.type: c for c in recipe.components}
    assert by_type["orchestrator"].flavor == "kubernetes"
    operator = stack_recipes.validate_component(
        by_type["step_operator"], stack_recipes.expand(by_type["step_operator"].configuration, "x", ENV)
    )
    assert operator.pod_settings.node_selectors == {"nvidia.com/gpu.present": "true"}
    assert operator.pod_settings.resources["limits"]["nvidia.com/gpu"] == "1"
    assert by_type["artifact_store"].flavor == "s3"
    tracker = by_type["experiment_tracker"]
    assert tracker.configuration["tracking_uri"] == "${MLFLOW_TRACKING_URI}"
    assert tracker.configuration["tracking_password"] == "{{deepsynth-mlflow.password}}"  # a ZenML secret, not a value
    assert stack_recipes.load_recipe("k8s-gpu-gcs").components[1].flavor == "gcp"


def test_missing_environment_variable_and_unknown_flavor_are_named(tmp_path):
    with pytest.raises(ConfigError, match="environment variable KUBE_CONTEXT is not set"):
        stack_recipes.check_recipe(stack_recipes.load_recipe("k8s-gpu-s3"), environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ncomponents:\n  orchestrator: {name: o, flavor: kubernetez}\n  artifact_store: "
        "{name: a, flavor: local}\n"
    )
    with pytest.raises(ConfigError, match="no flavor 'kubernetez' .*kubernetes"):
        stack_recipes.check_recipe(stack_recipes.load_recipe(bad))
    with pytest.raises(ConfigError, match="no such stack recipe"):
        stack_recipes.load_recipe("nope")


@pytest.mark.slow
def test_register_kubernetes_recipe_into_a_real_store(zenml_client, monkeypatch, capsys):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    active = zenml_client.active_stack_model.name
    assert main(["stack", "register", "k8s-gpu-s3"]) == 0
    assert main(["stack", "register", "k8s-gpu-s3"]) == 0  # idempotent: updates in place
    stack = zenml_client.get_stack("deepsynth-k8s-gpu")
    flavors = {t.value: c[0].flavor_name for t, c in stack.components.items()}
    assert flavors == {
        "orchestrator": "kubernetes",
        "step_operator": "kubernetes",
        "artifact_store": "s3",
        "container_registry": "default",
        "image_builder": "local",
        "experiment_tracker": "mlflow",
        "model_registry": "mlflow",
    }
    tracker = zenml_client.get_stack_component("experiment_tracker", "deepsynth-mlflow-remote")
    assert tracker.configuration["tracking_uri"] == "https://mlflow.example.com"
    assert zenml_client.get_secret("deepsynth-mlflow").secret_values == {"username": "ci", "password": "s3cret"}
    assert zenml_client.active_stack_model.name == active  # not activated without --activate
    monkeypatch.delenv("KUBE_CONTEXT")
    assert main(["stack", "register", "k8s-gpu-s3"]) == 2
    assert "KUBE_CONTEXT is not set" in capsys.readouterr().err
