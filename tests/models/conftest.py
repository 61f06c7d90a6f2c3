"""Fixtures for model tests: the tiny profile, built once per session and loaded with from_pretrained."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny(deepsynth_home):
    """``(model, tokenizer, source)`` of the tiny profile, loaded from disk."""
    from deepsynth.models.loading import load_base_model

    return load_base_model("tiny", home=deepsynth_home)
