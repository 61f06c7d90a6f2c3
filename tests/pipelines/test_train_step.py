"""The train_lora step through .entrypoint() on really rendered pages, and the adapter materializer."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.adapters import assert_same_adapter

from deepsynth.adapters import TrainedAdapter
from deepsynth.data.generator import render_dataset
from deepsynth.rendering.config import RenderSettings
from deepsynth.training.config import TrainerConfig

TRAIN = TrainerConfig(
    model_name="tiny",
    device="cpu",
    mode="tiny",
    batch_size=2,
    num_epochs=2,
    learning_rate=0.005,
    max_summary_tokens=16,
    progress_bar=False,
)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, make_docs):
    from steps.train_lora import train_lora

    docs = [{**d, "split": "train", "instruction": "Summarize:"} for d in make_docs(4, words=60)]
    rendered = render_dataset(docs, RenderSettings(modes=["tiny"], workers=1), tmp_path_factory.mktemp("rendered"))
    return train_lora.entrypoint(rendered, TRAIN)


def test_train_step_writes_a_trained_adapter(adapter):
    assert isinstance(adapter, TrainedAdapter)
    assert adapter.weights_file.name == "adapter_model.safetensors"
    summary = adapter.summary()
    assert summary["base_model"] == "tiny" and summary["trainable_params"] > 0
    assert summary["final_loss"] < summary["initial_loss"]
    assert len(summary["weights_sha256"]) == 64
    assert not list(adapter.path.rglob("*.bin")) and not list(adapter.path.rglob("*.pt"))


def test_trained_adapter_materializer_round_trip(adapter, tmp_path):
    from materializers import TrainedAdapterMaterializer

    uri = tmp_path / "artifact"
    uri.mkdir()
    materializer = TrainedAdapterMaterializer(str(uri))
    materializer.save(adapter)
    loaded = TrainedAdapterMaterializer(str(uri)).load(TrainedAdapter)
    assert loaded.sha256() == adapter.sha256()
    assert materializer.extract_metadata(adapter)["weights_sha256"] == adapter.sha256()
    (png,) = materializer.save_visualizations(adapter)
    assert Path(png).name == "loss_curve.png" and Path(png).stat().st_size > 1000


def test_not_an_adapter_folder_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a trained adapter"):
        TrainedAdapter(tmp_path)


def rank_process(rank: int):
    """The live torchrun worker process of ``rank`` started by this test process, or None."""
    import psutil

    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.environ().get("RANK") == str(rank) and "deepsynth.training.launch" in proc.cmdline():
                return proc
        except psutil.Error:  # exited meanwhile
            continue
    return None


@pytest.mark.slow
def test_killed_rank_fails_the_step_cleanly_and_the_same_call_resumes(tiny_config, rendered, tmp_path):
    import json
    import threading
    import time

    from deepsynth.paths import deepsynth_home
    from deepsynth.training.checkpointing import list_checkpoints
    from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer
    from deepsynth.training.fingerprints import resumable_state_dir
    from deepsynth.training.launch import TrainingLaunchError
    from steps.train_lora import train_lora

    common = dict(num_epochs=12, lora_dropout=0.0, save_steps=2, save_total_limit=2, batch_size=1)
    # One process with the same global batch (two micro-batches of one document per step) is the reference.
    DeepSynthLoRATrainer(tiny_config(gradient_accumulation_steps=2, output_dir=str(tmp_path / "one"), **common)).train(
        rendered
    )
    config = tiny_config(num_processes=2, distributed_timeout_s=60, **common)
    state = resumable_state_dir(deepsynth_home(config.deepsynth_home), config, rendered.path)
    outcome = {}

    def run_step():
        try:
            outcome["adapter"] = train_lora.entrypoint(rendered, config)
        except Exception as exc:  # noqa: BLE001  (the test inspects it)
            outcome["error"] = exc

    thread = threading.Thread(target=run_step)
    thread.start()
    deadline, victim = time.monotonic() + 240, None
    while victim is None:  # rank 1, once rank 0 has written a checkpoint
        assert thread.is_alive() and time.monotonic() < deadline, outcome
        victim = rank_process(1) if list_checkpoints(state) else None
        time.sleep(0.05)
    victim.kill()
    thread.join(timeout=240)
    assert not thread.is_alive(), "the step hung after a rank was killed"
    error = outcome.get("error")
    assert isinstance(error, TrainingLaunchError), outcome
    assert "torchrun with 2 processes exited with code" in str(error) and "the same command resumes" in str(error)
    steps_done = int(list_checkpoints(state)[-1].name.split("-")[1])
    assert 2 <= steps_done < 24

    adapter = train_lora.entrypoint(rendered, config)  # the same call again
    metrics = json.loads((adapter.path / "training_metrics.json").read_text())
    assert metrics["resumed_from_step"] == steps_done and metrics["global_step"] == 24 and metrics["world_size"] == 2
    assert_same_adapter(adapter.path, tmp_path / "one")
    assert not state.exists()  # a finished training leaves no state behind


@pytest.mark.slow
def test_a_pipeline_run_with_two_processes_trains_the_one_process_adapter_and_logs_once(
    zenml_client, tiny_config, rendered, tmp_path
):
    import json

    import mlflow

    from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer
    from steps.train_lora import train_lora

    common = dict(num_epochs=2, lora_dropout=0.0, batch_size=1)
    # One process with the same global batch (two micro-batches of one document per step) is the reference.
    DeepSynthLoRATrainer(tiny_config(gradient_accumulation_steps=2, output_dir=str(tmp_path / "one"), **common)).train(
        rendered
    )
    tracker = zenml_client.active_stack.experiment_tracker
    # Calling a step outside a pipeline runs it as a one-step pipeline on the active stack.
    adapter = train_lora.with_options(experiment_tracker=tracker.name)(rendered, tiny_config(num_processes=2, **common))
    run = zenml_client.list_pipeline_runs(sort_by="desc:created", size=1).items[0]
    assert run.status == "completed" and list(run.steps) == ["train_lora"]
    assert_same_adapter(adapter.path, tmp_path / "one")
    metrics = json.loads((adapter.path / "training_metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_step"] == 4 and metrics["system"]["torch_threads"] == "1"
    # The step process logged rank 0's metrics once; the ranks logged nothing.
    client = mlflow.MlflowClient(tracker.get_tracking_uri())
    logged = [
        r
        for e in client.search_experiments()
        for r in client.search_runs([e.experiment_id])
        if r.data.params.get("num_processes") == "2"
    ]
    assert len(logged) == 1
    assert len(client.get_metric_history(logged[0].info.run_id, "train_loss")) == 4
