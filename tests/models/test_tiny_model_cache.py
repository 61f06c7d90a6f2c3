"""The built tiny model is a cache like the others: its files carry content hashes and the key (profile,
seed, version) they were built for, and a build that fails the check is rebuilt with a warning."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from support.tamper import flip_file_byte

from deepsynth.models.loading import PROFILE_FILE, build_tiny_model, load_base_model, tiny_model_dir


def flip_a_weight_byte(path):
    flip_file_byte(path / "model.safetensors")


def truncate_the_weights(path):
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def built_for_another_seed(path):
    profile = json.loads((path / PROFILE_FILE).read_text())
    (path / PROFILE_FILE).write_text(json.dumps({**profile, "seed": profile["seed"] + 1}))


def lose_the_tokenizer(path):
    (path / "tokenizer.json").unlink()


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage", [flip_a_weight_byte, truncate_the_weights, built_for_another_seed, lose_the_tokenizer]
)
def test_a_damaged_tiny_build_is_rebuilt_with_a_warning(tmp_path, tiny, caplog, damage):
    path = build_tiny_model(tiny_model_dir(tmp_path))
    damage(path)
    with caplog.at_level(logging.WARNING, logger="deepsynth.models.loading"):
        model, tokenizer, source = load_base_model("tiny", home=tmp_path)
    assert source.location == str(path)
    assert any(str(path) in r.getMessage() and "rebuilt" in r.getMessage() for r in caplog.records)
    reference = tiny[0].state_dict()
    for name, value in model.state_dict().items():
        assert torch.equal(value, reference[name]), name
    assert tokenizer.convert_tokens_to_ids("<image>") == 128815
