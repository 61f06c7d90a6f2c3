"""Config sections check assignment like a key in a file: unknown names and values outside a field's choices."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re
import typing

import pytest

from deepsynth.configuration import Section, SettingValueError, UnknownSettingError
from deepsynth.errors import ConfigError
from deepsynth.training.config import OptimizerConfig, TrainerConfig
from pipelines.config import RunConfig


def _section_classes(cls: type = RunConfig) -> list[type]:
    """RunConfig and every config dataclass it holds, nested ones included."""
    found = [cls]
    for hint in typing.get_type_hints(cls).values():
        for candidate in (hint, *typing.get_args(hint)):
            if dataclasses.is_dataclass(candidate) and candidate not in found:
                found += [c for c in _section_classes(candidate) if c not in found]
    return found


SECTIONS = _section_classes()


def test_a_misspelt_attribute_is_refused_with_a_did_you_mean():
    config = TrainerConfig()
    with pytest.raises(
        UnknownSettingError, match=r"TrainerConfig has no setting 'lora_rnak' \(did you mean 'lora_rank'\?\)"
    ):
        config.lora_rnak = 3
    with pytest.raises(AttributeError):  # what Python code expects of a refused attribute
        config.lora_rnak = 3
    with pytest.raises(ConfigError):  # what the CLI reports with exit code 2
        config.lora_rnak = 3
    assert not hasattr(config, "lora_rnak") and config.lora_rank == 16


@pytest.mark.parametrize(
    "name, value, allowed",
    [
        ("mixed_precision", "fp8", "['no', 'bf16', 'fp16']"),
        ("qlora_type", "int4", "['nf4', 'fp4']"),
        ("qlora_bits", 3, "[4, 8]"),
        ("device", "mps", "['auto', 'cpu', 'cuda']"),
        ("optimizer", "sgd", "['adamw', 'adamw_8bit']"),
        ("lr_scheduler", "step", "['linear', 'cosine', 'constant']"),  # the shorthand, checked by the optimizer section
    ],
)
def test_an_enumerated_value_outside_its_choices_is_refused_on_assignment(name, value, allowed):
    config = TrainerConfig()
    before = getattr(config, name)
    with pytest.raises(SettingValueError, match=re.escape(f"{value!r} is not one of {allowed}")):
        setattr(config, name, value)
    assert getattr(config, name) == before


def test_valid_assignments_and_the_learning_rate_alias_still_work():
    config = TrainerConfig()
    config.mixed_precision, config.qlora_bits, config.lora_rank = "bf16", 8, 32
    config.optimizer.learning_rate = 2e-4
    assert config.learning_rate == 2e-4  # README: one value
    config.learning_rate = 3e-4
    assert config.optimizer.learning_rate == 3e-4
    config.lr_scheduler = "cosine"
    assert config.optimizer.lr_scheduler == "cosine"
    config._scratch = "private names are the object's own business"
    replaced = dataclasses.replace(config, output_dir="elsewhere")
    assert (replaced.learning_rate, replaced.mixed_precision, replaced.output_dir) == (3e-4, "bf16", "elsewhere")
    assert copy.deepcopy(config) == config and pickle.loads(pickle.dumps(config)) == config
    assert TrainerConfig.from_dict(TrainerConfig(lora_preset="qlora_8bit").to_dict()).qlora_bits == 8


def test_construction_reports_a_bad_choice_as_before():
    with pytest.raises(ValueError, match=r"train.mixed_precision: 'fp8' is not one of \['no', 'bf16', 'fp16'\]"):
        TrainerConfig(mixed_precision="fp8")
    with pytest.raises(ConfigError, match=r"job.json: mixed_precision: 'fp8' is not one of"):  # a job's top level
        TrainerConfig.from_dict({"mixed_precision": "fp8"}, source="job.json")


def test_every_section_of_the_run_configuration_checks_assignment():
    assert OptimizerConfig in SECTIONS and TrainerConfig in SECTIONS and len(SECTIONS) >= 12
    for cls in SECTIONS:
        assert issubclass(cls, Section), cls
        section = cls()
        name = dataclasses.fields(cls)[0].name
        with pytest.raises(UnknownSettingError, match=rf"did you mean '{name}'\?"):
            setattr(section, name + "x", 1)


@pytest.mark.parametrize(
    "section, name, value",
    [
        ("", "pipeline", "deploy"),
        ("ingest", "source", "ftp"),
        ("ingest", "on_bad_row", "skip"),
        ("train.optimizer", "name", "sgd"),
    ],
)
def test_other_sections_check_their_choices_on_assignment(section, name, value):
    config = RunConfig()
    target = config
    for part in filter(None, section.split(".")):
        target = getattr(target, part)
    with pytest.raises(SettingValueError, match=rf"{section or 'run'}.{name}: '{value}' is not one of"):
        setattr(target, name, value)


def _float_fields(cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls) if float in (hints[f.name], *typing.get_args(hints[f.name]))]


FLOAT_FIELDS = [(cls, name) for cls in SECTIONS for name in _float_fields(cls)]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("cls, name", FLOAT_FIELDS, ids=[f"{c.__name__}.{n}" for c, n in FLOAT_FIELDS])
def test_nan_and_infinity_are_refused_on_assignment_and_construction_of_every_float_field(cls, name, value):
    assert len(FLOAT_FIELDS) >= 5
    label = cls._section or cls.__name__
    with pytest.raises(SettingValueError, match=rf"^{re.escape(label)}\.{name}: .* is not a finite number") as refused:
        setattr(cls(), name, value)
    assert refused.value.key == f"{label}.{name}" and refused.value.exit_code == 2
    with pytest.raises(ValueError, match="is not a finite number"):
        cls(**{name: value})


def test_the_learning_rate_shorthand_and_nested_values_are_checked_too():
    config = TrainerConfig()
    with pytest.raises(SettingValueError, match=r"train\.optimizer\.learning_rate: nan is not a finite number"):
        config.learning_rate = float("nan")
    assert config.learning_rate == OptimizerConfig().learning_rate  # unchanged
    with pytest.raises(SettingValueError, match=r"^train\.lora_target_modules\[0\]: lone surrogate U\+D800"):
        config.lora_target_modules = ["\ud800"]
