"""Fixtures for model tests: the tiny profile, built once per session and loaded with from_pretrained."""

import pytest


@pytest.fixture(scope="session")
def tiny(deepsynth_home):
    """``(model, tokenizer, source)`` of the tiny profile, loaded from disk."""
    from deepsynth.models.loading import load_base_model

    return load_base_model("tiny", home=deepsynth_home)
