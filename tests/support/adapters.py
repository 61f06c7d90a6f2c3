"""Shared tiny-profile fixtures for every test folder (registered once, by tests/conftest.py).

A real rendered dataset (deepsynth.rendering, tiny mode), the tiny profile built from its config and
loaded with from_pretrained, and one real few-step LoRA training run. Results live on disk under the
session's base temp dir. Small drawn training datasets and fast trainer configs are here too.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import TYPE_CHECKING

import pytest
from support.rendered import SUMMARIES, write_drawn_dataset

if TYPE_CHECKING:
    import torch


def documents(split: str = "train", n: int = 4) -> list[dict]:
    """Short documents whose first sentence is their summary."""
    return [
        {
            "id": f"{split}-{i}",
            "split": split,
            "instruction": None,
            "summary": SUMMARIES[i % 4],
            "text": f"{SUMMARIES[i % 4]} Officials shared more details on Tuesday. Document {i} ends here.",
        }
        for i in range(n)
    ]


@pytest.fixture(scope="session")
def shared_home(deepsynth_home):
    """The session's DeepSynth home with the tiny profile (``deepsynth_home`` of tests/conftest.py)."""
    return deepsynth_home


@pytest.fixture(scope="session")
def rendered_dataset(tmp_path_factory):
    """Train and test splits rendered by the real renderer in tiny mode."""
    from deepsynth.data.generator import render_dataset
    from deepsynth.data.rendered import MANIFEST, RenderedDataset
    from deepsynth.rendering.config import RenderSettings

    path = tmp_path_factory.getbasetemp() / "shared_rendered"
    if (path / MANIFEST).is_file():
        return RenderedDataset(path)
    docs = documents("train") + documents("test", 3)
    return render_dataset(
        docs,
        RenderSettings(modes=["tiny"], workers=1, max_pages=1),
        path,
        extra_manifest={"content_hash": "test-content-hash"},
    )


@pytest.fixture(scope="session")
def make_rendered():
    """:func:`support.rendered.write_drawn_dataset`: a small training split with drawn pages."""
    return write_drawn_dataset


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """Four one-page training documents in the ``tiny`` mode."""
    return write_drawn_dataset(tmp_path_factory.mktemp("rendered"))


def tiny_trainer_config(home, output_dir, **overrides):
    """A fast TrainerConfig on the tiny profile (rank 8, batch 2, three epochs at 1e-2), with ``overrides``."""
    from deepsynth.training.config import TrainerConfig

    values = dict(
        model_name="tiny",
        deepsynth_home=str(home),
        output_dir=str(output_dir),
        batch_size=2,
        num_epochs=3,
        learning_rate=1e-2,
        lora_rank=8,
        lora_alpha=16,
        max_length=256,
        max_summary_tokens=32,
        progress_bar=False,
        device="cpu",
    )
    values.update(overrides)
    return TrainerConfig(**values)


@pytest.fixture
def tiny_config(deepsynth_home, tmp_path):
    """A factory of fast TrainerConfigs on the tiny profile (:func:`tiny_trainer_config` in this test's folder)."""
    return lambda **overrides: tiny_trainer_config(deepsynth_home, **{"output_dir": tmp_path / "out", **overrides})


@pytest.fixture(scope="session")
def trained_adapter(shared_home, rendered_dataset, tmp_path_factory):
    """Directory of a real LoRA adapter: DeepSynthLoRATrainer, a few steps on the tiny profile."""
    from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer

    out = tmp_path_factory.getbasetemp() / "shared_adapter"
    if (out / "adapter_model.safetensors").is_file():
        return out
    config = tiny_trainer_config(
        shared_home, out, mode="tiny", num_epochs=2, lora_dropout=0.0, instruction_prompt="Summarize this text:"
    )
    metrics, _ = DeepSynthLoRATrainer(config).train(rendered_dataset)
    assert metrics["final_loss"] < metrics["initial_loss"]
    return out


@pytest.fixture(scope="session")
def loaded_adapter(trained_adapter, shared_home):
    """The trained adapter on its base, loaded through deepsynth.inference."""
    from deepsynth.inference import load_adapter_model

    return load_adapter_model(trained_adapter, home=shared_home)


@pytest.fixture(scope="session")
def test_docs(rendered_dataset):
    """The rendered test split."""
    return rendered_dataset.documents(split="test")


def loss_curve(adapter_dir) -> list:
    """The training run's loss curve as written beside the adapter."""
    return json.loads((adapter_dir / "training_metrics.json").read_text())["loss_curve"]


def prompt_logits(loaded, doc) -> tuple[torch.Tensor, int]:
    """Teacher-forced logits of ``doc``'s training prompt under ``loaded``'s model, and the prompt's length."""
    import torch

    from deepsynth.models.batching import build_batch, page_features, prepare_document
    from deepsynth.models.feature_cache import FeatureCache
    from deepsynth.models.preprocessing import view_spec
    from deepsynth.models.vision import ocr_core

    model, tok = loaded.model, loaded.tokenizer
    sam = ocr_core(model).config.vision_config.sam_config.image_size
    prepared = prepare_document(
        doc,
        view_spec(doc.mode, sam),
        tok,
        default_instruction=loaded.instruction,
        max_length=256,
        max_summary_tokens=32,
        text_slot=False,
    )
    batch = build_batch(
        model,
        [prepared],
        [page_features(model, prepared, FeatureCache("t", enabled=False))],
        None,
        tok.pad_token_id,
        torch.device("cpu"),
    )
    with torch.no_grad():
        logits = model(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask).logits
    return logits, sum(1 for label in prepared.example.labels if label == -100)


def assert_same_adapter(got_dir, expected_dir, atol: float = 1e-6) -> None:
    """The two folders hold the same adapter tensors (``adapter_model.safetensors``) within ``atol``."""
    import torch
    from safetensors.torch import load_file

    got, expected = (load_file(str(d / "adapter_model.safetensors")) for d in (got_dir, expected_dir))
    assert set(got) == set(expected) and got
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=atol, rtol=0, msg=name)


# What ``mlflow.set_tracking_uri``, ``set_registry_uri`` and ``set_experiment`` write besides their globals.
_MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID")


def _mlflow_globals():
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking

    return (tracking, "_tracking_uri"), (registry, "_registry_uri"), (fluent, "_active_experiment_id")


def mlflow_state() -> tuple:
    """Where this process's MLflow calls go: the tracking URI, registry URI and active experiment that
    mlflow keeps as module globals (None: unset) and the environment variables it falls back to."""
    variables = tuple(os.environ.get(name) for name in _MLFLOW_VARIABLES)
    if "mlflow" not in sys.modules:
        return (None, None, None, *variables)
    return (*(getattr(module, name) for module, name in _mlflow_globals()), *variables)


def restore_mlflow_state(saved: tuple) -> None:
    """Put back exactly what :func:`mlflow_state` returned, unset included (mlflow's setters can only pin)."""
    for name, value in zip(_MLFLOW_VARIABLES, saved[3:]):
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if "mlflow" in sys.modules:
        for (module, name), value in zip(_mlflow_globals(), saved[:3]):
            setattr(module, name, value)


@contextlib.contextmanager
def mlflow_store_at(root, experiment: str):
    """MLflow tracking and registry on a SQLite file under ``root`` (not a URI an earlier test left set),
    with ``experiment`` active; the previous URIs and experiment are restored afterwards. Yields the URI."""
    import mlflow

    previous = mlflow_state()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment(experiment, artifact_location=str(root / "art")))
    try:
        yield uri
    finally:
        restore_mlflow_state(previous)
