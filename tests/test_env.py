"""The process environment has one owner (deepsynth.env): defaults never override what the user exported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deepsynth import env
from pipelines.config_loading import load_run_config
from pipelines.local_stack import prepare_run_environment

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize(("config", "offline"), [("gpu.yaml", "0"), ("quickstart.yaml", "1"), ("ci.yaml", "1")])
def test_the_hub_is_reachable_only_for_a_hub_model_on_another_stack(config, offline, monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPSYNTH_HOME", str(tmp_path))
    monkeypatch.delenv(env.HUB_OFFLINE)
    run = load_run_config(CONFIGS / config, check=False)
    prepare_run_environment(run.train.model_name, run.deployment.stack)
    assert os.environ[env.HUB_OFFLINE] == offline


def test_an_exported_value_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPSYNTH_HOME", str(tmp_path))
    monkeypatch.setenv(env.HUB_OFFLINE, "1")
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")
    prepare_run_environment("deepseek-ai/DeepSeek-OCR", "deepsynth-k8s-gpu")
    env.set_defaults(env.logging_defaults(verbosity=0, debug=False, color=False))
    assert os.environ[env.HUB_OFFLINE] == "1" and os.environ["TRANSFORMERS_VERBOSITY"] == "info"


def test_a_local_model_directory_is_not_a_hub_name(tmp_path):
    model = tmp_path / "mirror" / "DeepSeek-OCR"
    model.mkdir(parents=True)
    assert env.is_hub_name("deepseek-ai/DeepSeek-OCR") and not env.is_hub_name("tiny")
    assert env.hub_offline(str(model), local_stack=False) == "1"
    assert env.hub_offline("deepseek-ai/DeepSeek-OCR", local_stack=True) == "1"


def test_ranks_come_from_the_launcher(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert (env.rank(), env.world_size(), env.local_rank()) == (0, 1, 0)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert (env.rank(), env.world_size(), env.local_rank()) == (3, 4, 3)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert env.local_rank() == 1
