"""The train_lora step through .entrypoint() on really rendered pages, and the adapter materializer."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepsynth.adapters import TrainedAdapter
from deepsynth.rendering.dataset import render_dataset
from deepsynth.rendering.config import RenderSettings
from deepsynth.training.config import TrainerConfig

TRAIN = TrainerConfig(model_name="tiny", device="cpu", mode="tiny", batch_size=2, num_epochs=2, learning_rate=0.005,
                      max_summary_tokens=16, progress_bar=False)


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
