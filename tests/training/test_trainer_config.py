import json

import pytest

from deepsynth.errors import ConfigError
from deepsynth.training.config import PRESETS, TrainerConfig, get_lora_preset

SEED_JOB = """{
  "model_name": "deepseek-ai/DeepSeek-OCR",
  "output_dir": "./model",
  "use_lora": true,
  "lora_rank": 16,
  "lora_alpha": 32,
  "use_qlora": true,
  "qlora_bits": 4,
  "use_text_encoder": false,
  "instruction_prompt": "Summarize this text:",
  "batch_size": 8,
  "num_epochs": 3,
  "learning_rate": 0.0005
}"""


def test_seed_job_configuration_is_accepted_as_is(tmp_path):
    path = tmp_path / "job.json"
    path.write_text(SEED_JOB)
    for config in (TrainerConfig.from_json(path), TrainerConfig.from_json(SEED_JOB)):
        assert config.use_qlora and config.qlora_bits == 4 and config.learning_rate == 5e-4
        assert config.model_name == "deepseek-ai/DeepSeek-OCR" and config.batch_size == 8


def test_round_trip_through_a_dict():
    config = TrainerConfig(model_name="tiny", lora_rank=4, lora_target_modules=["q_proj"])
    assert TrainerConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    "data, message",
    [
        ({"lora_rnak": 8}, "unknown key .*did you mean 'lora_rank'"),
        ({"qlora_bits": 3}, r"qlora_bits: 3 is not one of \[4, 8\]"),
        ({"qlora_type": "int4"}, "not one of"),
        ({"mixed_precision": "fp8"}, "not one of"),
        ({"learning_rate": "fast"}, "expected float"),
        ({"use_lora": False, "use_qlora": True}, "use_qlora: needs use_lora"),
        ({"lora_target_experts": True}, "lora_dropout: 0"),
        ({"batch_size": 0}, "batch_size: must be at least 1"),
        ({"lora_preset": "huge"}, "unknown preset"),
    ],
)
def test_bad_values_are_config_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        TrainerConfig.from_dict(data, source="job.json")


def test_presets_match_the_seed_table_and_apply():
    table = {name: (p.rank, p.alpha, p.dropout) for name, p in PRESETS.items()}
    assert table["minimal"] == (4, 8, 0.05)
    assert table["standard"] == (16, 32, 0.05)
    assert table["high_capacity"] == (64, 128, 0.1)
    assert get_lora_preset("qlora_4bit").use_qlora and get_lora_preset("qlora_4bit").qlora_bits == 4
    assert get_lora_preset("qlora_8bit").qlora_bits == 8
    config = TrainerConfig.from_dict({"lora_preset": "qlora_8bit"})
    assert (config.lora_rank, config.use_qlora, config.qlora_bits) == (16, True, 8)


def test_a_preset_that_conflicts_with_an_explicit_value_is_an_error():
    with pytest.raises(ValueError, match="lora_preset 'minimal' sets lora_rank=4, but lora_rank=32"):
        TrainerConfig(lora_preset="minimal", lora_rank=32)
    with pytest.raises(ValueError, match="use_qlora=False, but use_qlora=True"):
        TrainerConfig(lora_preset="minimal", use_qlora=True)
    with pytest.raises(ConfigError, match="sets lora_rank=4"):
        TrainerConfig.from_dict({"lora_preset": "minimal", "lora_rank": 32}, source="job.json")
    agreeing = TrainerConfig(lora_preset="minimal", lora_rank=4)
    assert (agreeing.lora_rank, agreeing.lora_alpha) == (4, 8)
    assert TrainerConfig.from_dict(agreeing.to_dict()) == agreeing  # a saved config round-trips


def test_enumerated_fields_are_checked_on_construction():
    with pytest.raises(ValueError, match=r"train.qlora_type: 'bogus' is not one of \['nf4', 'fp4'\]"):
        TrainerConfig(qlora_type="bogus")
    with pytest.raises(ValueError, match="train.optimizer"):
        TrainerConfig(optimizer="sgd")
