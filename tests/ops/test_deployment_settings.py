"""Per-step DockerSettings/ResourceSettings from a config's deployment section, schedules and
tracking-store checks against a real ZenML client (temp store, the embedded local stack)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepsynth.errors import ConfigError
from pipelines import deployment
from pipelines.config_loading import load_run_config

CONFIGS = Path(__file__).parents[2] / "configs"
STEPS = [
    "ingest",
    "render_pages",
    "validate_dataset",
    "check_data_quality",
    "train_lora",
    "evaluate_adapter",
    "export_and_register",
]


def test_cpu_config_keeps_every_step_on_the_cpu_image():
    config = load_run_config(CONFIGS / "quickstart.yaml")
    assert deployment.step_options(config, STEPS) == {}
    settings = deployment.docker_settings(config.deployment.cpu_image, config.deployment.skip_build)
    assert settings.parent_image == "deepsynth/cpu:0.1.0" and settings.skip_build


def test_gpu_config_puts_train_and_evaluate_on_the_gpu_image_with_one_gpu(monkeypatch):
    monkeypatch.setenv("DEEPSYNTH_REGISTRY", "registry.example.com/ds")
    config = load_run_config(CONFIGS / "gpu.yaml")
    options = deployment.step_options(config, STEPS, orchestrator_flavor="kubernetes")
    assert sorted(options) == ["evaluate_adapter", "train_lora"]
    for entry in options.values():
        assert entry["settings"]["docker"].parent_image == "registry.example.com/ds/deepsynth-gpu:0.1.0"
        assert entry["settings"]["resources"].gpu_count == 1
        assert entry["step_operator"] == "deepsynth-gpu"
    # Without a step operator the Kubernetes orchestrator's pods get the GPU node selector instead.
    config = load_run_config(CONFIGS / "gpu.yaml", ["deployment.step_operator=null"])
    entry = deployment.step_options(config, STEPS, orchestrator_flavor="kubernetes")["train_lora"]
    assert entry["settings"]["orchestrator.kubernetes"] == {
        "pod_settings": {"node_selectors": {"nvidia.com/gpu.present": "true"}}
    }
    assert "step_operator" not in entry
    assert (
        deployment.docker_settings(config.deployment.cpu_image, True).parent_image
        == "registry.example.com/ds/deepsynth-cpu:0.1.0"
    )
    # Steps a pipeline does not have get nothing.
    assert sorted(deployment.step_options(config, ["ingest", "train_lora"])) == ["train_lora"]


def test_gpu_count_needs_a_gpu_image_and_unset_registry_is_named(monkeypatch):
    with pytest.raises(ConfigError, match="deployment.gpu_image: required when gpu_count > 0"):
        load_run_config(CONFIGS / "quickstart.yaml", ["deployment.gpu_count=1"])
    monkeypatch.delenv("DEEPSYNTH_REGISTRY", raising=False)
    with pytest.raises(ConfigError, match="DEEPSYNTH_REGISTRY is not set"):
        deployment.docker_settings(load_run_config(CONFIGS / "gpu.yaml").deployment.cpu_image, True)


@pytest.mark.parametrize("name", ["ci.yaml", "schedule.yaml"])
def test_scheduled_and_ci_configs_refuse_a_sqlite_tracking_store(name):
    for uri in ("sqlite:///mlflow.db", "file:///tmp/mlruns", "/tmp/mlruns"):
        with pytest.raises(ConfigError, match="local file/SQLite store"):
            load_run_config(CONFIGS / name, [f"tracking.server={uri}"])


def test_schedule_and_tracking_checks_against_the_active_local_stack(zenml_client, monkeypatch):
    monkeypatch.setenv("DEEPSYNTH_REGISTRY", "registry.example.com/ds")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.example.com")
    local = ["deployment.stack=null", "deployment.step_operator=null"]
    config = load_run_config(CONFIGS / "schedule.yaml", local)
    # The embedded stack's tracker is SQLite: the scheduled config refuses it before anything runs.
    with pytest.raises(ConfigError, match="active stack's experiment tracker logs to its embedded SQLite store"):
        deployment.pipeline_options(config)
    config = load_run_config(CONFIGS / "schedule.yaml", local + ["tracking.server=null"])
    with pytest.raises(ConfigError, match="tracking.allow_local_store is false"):
        deployment.pipeline_options(config)
    config = load_run_config(
        CONFIGS / "schedule.yaml", local + ["tracking.server=null", "tracking.allow_local_store=true"]
    )
    with pytest.raises(ConfigError, match=r"orchestrator \(local\) has no schedules.*deepsynth schedule install"):
        deployment.pipeline_options(config)
    options = deployment.pipeline_options(load_run_config(CONFIGS / "ci.yaml"))
    assert options["settings"]["docker"].parent_image == "deepsynth/cpu:0.1.0"
    assert "schedule" not in options and "steps" not in options


def test_schedule_object_for_a_schedulable_orchestrator(monkeypatch):
    config = load_run_config(CONFIGS / "schedule.yaml")
    schedule = deployment.schedule(config, "kubernetes")
    assert schedule.cron_expression == "0 3 * * 1" and schedule.name == "deepsynth-weekly-retrain"


def test_gpu_count_and_training_processes_agree(monkeypatch):
    monkeypatch.setenv("DEEPSYNTH_REGISTRY", "registry.example.com/ds")
    config = load_run_config(CONFIGS / "gpu.yaml", ["deployment.gpu_count=4"])
    assert config.train.num_processes == 0  # one rank per GPU the pod gets
    assert deployment.step_options(config, STEPS)["train_lora"]["settings"]["resources"].gpu_count == 4
    with pytest.raises(
        ConfigError,
        match=r"--set deployment.gpu_count: train_lora gets 4 GPUs, but --set train.num_processes "
        r"is 1, so 3 would stay idle; --set train.num_processes=0 starts one",
    ):
        load_run_config(CONFIGS / "gpu.yaml", ["deployment.gpu_count=4", "train.num_processes=1"])
    with pytest.raises(
        ConfigError,
        match=r"--set train.num_processes: 8 training processes need one GPU each, but "
        r"deployment.gpu_count \(.*gpu.yaml\) gives train_lora 1",
    ):
        load_run_config(CONFIGS / "gpu.yaml", ["train.num_processes=8"])
    # Without GPUs for the step (the CPU configs) the processes share the machine's cores.
    assert load_run_config(CONFIGS / "quickstart.yaml", ["train.num_processes=2"]).train.num_processes == 2
