import mlflow
import pytest
from mlflow.tracking import MlflowClient

from deepsynth.errors import DeepSynthError
from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer
from deepsynth.training.mlflow_logging import log_training_to_mlflow


@pytest.fixture
def mlflow_store(tmp_path):
    """A real throwaway MLflow store (the URI is set here, in the test, never in library code)."""
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    # Artifacts stay in tmp_path (with a bare sqlite URI they would land in ./mlruns).
    experiment = mlflow.create_experiment("deepsynth-test", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    yield MlflowClient(uri)
    mlflow.set_tracking_uri(previous)


def test_logs_params_curve_throughput_system_and_adapter(tiny_config, rendered, mlflow_store, tmp_path):
    config = tiny_config(num_epochs=2, save_steps=1)
    metrics, _ = DeepSynthLoRATrainer(config).train(rendered)
    with mlflow.start_run() as run:
        assert log_training_to_mlflow(config, metrics)
    data = mlflow_store.get_run(run.info.run_id).data
    assert data.params["lora_rank"] == "8" and data.params["model_name"] == "tiny"
    curve = mlflow_store.get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in curve] == [1, 2, 3, 4]
    assert [m.value for m in curve] == pytest.approx([loss for _, loss, _ in metrics["loss_curve"]])
    for key in ("samples_per_second", "tokens_per_second", "mfu", "trainable_params"):
        assert data.metrics[key] == pytest.approx(float(metrics[key]))
    assert data.tags["system.torch"] and data.tags["system.device"] == "cpu"
    artifacts = {a.path for a in mlflow_store.list_artifacts(run.info.run_id, "adapter")}
    assert {
        "adapter/adapter_model.safetensors",
        "adapter/adapter_config.json",
        "adapter/trainer_config.json",
    } <= artifacts
    assert "adapter/checkpoints" not in artifacts


def test_needs_an_active_run_and_only_rank_zero_logs(tiny_config, mlflow_store):
    config = tiny_config()
    with pytest.raises(DeepSynthError, match="no active MLflow run"):
        log_training_to_mlflow(config, {"rank": 0, "adapter_dir": "x"})
    with mlflow.start_run() as run:
        assert log_training_to_mlflow(config, {"rank": 1, "adapter_dir": "x", "final_loss": 1.0}) is False
    assert mlflow_store.get_run(run.info.run_id).data.metrics == {}
