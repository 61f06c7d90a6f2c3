"""The configuration reference (docs/configuration.md, `deepsynth config keys`) and unknown-key messages."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from deepsynth.configuration import key_docs
from deepsynth.errors import ConfigError
from deepsynth.serving.config import ServeConfig
from deepsynth.training.config import TrainerConfig
from deepsynth_cli import main
from pipelines import config_reference
from pipelines.config import RunConfig
from pipelines.config_loading import load_run_config, read_yaml

ROOT = Path(__file__).parents[1]
RUN_CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
SERVE_CONFIGS = sorted((ROOT / "configs" / "serving").glob("*.yaml"))


def test_the_committed_reference_is_current():
    assert config_reference.DOC_PATH == ROOT / "docs" / "configuration.md"
    committed = config_reference.DOC_PATH.read_text(encoding="utf-8")
    assert committed == config_reference.render_markdown(), (
        f"docs/configuration.md is stale: regenerate it with `{config_reference.REGENERATE}` and commit it"
    )


def test_check_mode_fails_on_a_stale_file_and_passes_once_regenerated(tmp_path, capsys):
    target = tmp_path / "configuration.md"
    target.write_text(config_reference.render_markdown().replace("LoRA rank r", "LoRA rank"), encoding="utf-8")
    assert config_reference.main(["--check", "--output", str(target)]) == 1
    assert config_reference.REGENERATE in capsys.readouterr().err
    assert config_reference.main(["--output", str(target)]) == 0
    assert config_reference.main(["--check", "--output", str(target)]) == 0


def _dotted(data: dict, reference: dict, prefix: str = "") -> list[str]:
    """The dotted keys a YAML mapping sets: a mapping is a section unless the reference has its key (a dict knob)."""
    keys = []
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        keys += _dotted(value, reference, dotted) if isinstance(value, dict) and dotted not in reference else [dotted]
    return keys


def test_every_key_of_every_shipped_config_is_documented_with_type_default_and_help():
    reference = {doc.key: doc for section in config_reference.sections() for doc in section.keys}
    written = [key for path in RUN_CONFIGS + SERVE_CONFIGS for key in _dotted(read_yaml(path), reference)]
    assert written and not [key for key in written if key not in reference]
    assert all(doc.help and doc.type for doc in reference.values()), [k for k, d in reference.items() if not d.help]
    markdown = config_reference.DOC_PATH.read_text(encoding="utf-8")
    assert all(f"| `{key}` |" in markdown for key in reference)


def test_the_sections_are_the_run_configurations_top_level_keys_and_serve():
    names = [s.name for s in config_reference.sections()]
    section_fields = [f.name for f in dataclasses.fields(RunConfig) if f.default_factory is not dataclasses.MISSING]
    assert names == ["run", *section_fields, "serve"]
    top = {doc.key for doc in config_reference.select("run")[0].keys}
    assert top == {f.name for f in dataclasses.fields(RunConfig)} - set(section_fields)
    serve = {doc.key for doc in config_reference.select("serve")[0].keys}
    assert serve == {f"serve.{f.name}" for f in dataclasses.fields(ServeConfig)}


def test_rows_carry_the_knobs_type_default_and_help():
    rows = {doc.key: doc for doc in key_docs(RunConfig)}
    assert rows["train.mixed_precision"].type == '"no" | "bf16" | "fp16"'
    assert (rows["train.lora_rank"].type, rows["train.lora_rank"].default) == ("int", 16)
    assert rows["train.lora_rank"].help == "LoRA rank r"
    assert (rows["run_name"].type, rows["run_name"].default) == ("str | null", None)
    assert rows["train.optimizer.learning_rate"].default == 5e-4
    assert "optimizer.learning_rate" in rows["train.learning_rate"].help  # the shorthand says what it stands for


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["config", "keys", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_config_keys_prints_all_sections_or_one(capsys):
    code, everything, _ = _cli(capsys)
    assert code == 0
    for section in config_reference.sections():
        assert f"[{section.name}] {section.title}" in everything
    code, train, _ = _cli(capsys, "train")
    assert code == 0 and "  train.lora_rank: int = 16\n      LoRA rank r" in train
    assert "[render]" not in train and "render.modes" not in train
    code, optimizer, _ = _cli(capsys, "train.optimizer")
    assert code == 0 and "train.optimizer.lr_scheduler" in optimizer and "train.lora_rank" not in optimizer


def test_config_keys_json_is_one_document(capsys):
    code, out, _ = _cli(capsys, "serve", "--json")
    document = json.loads(out)
    assert code == 0 and [s["name"] for s in document["sections"]] == ["serve"]
    port = next(k for k in document["sections"][0]["keys"] if k["key"] == "serve.port")
    assert port == {"key": "serve.port", "type": "int", "default": 8080, "help": "TCP port (0: any free port)"}
    code, out, _ = _cli(capsys, "--json")
    assert code == 0 and len(json.loads(out)["sections"]) == len(config_reference.sections())


def test_an_unknown_section_exits_2_listing_the_sections(capsys):
    code, out, err = _cli(capsys, "trian")
    assert code == 2 and out == ""
    names = ", ".join(s.name for s in config_reference.sections())
    assert err.strip() == f"error: no configuration section or key 'trian' (did you mean 'train'?); sections: {names}"


@pytest.mark.parametrize(
    "where, overrides, key, known",
    [
        ("yaml", [], "train.lora_rnak", [*TrainerConfig.settable()]),
        ("set", ["train.lora_rnak=3"], "train.lora_rnak", [*TrainerConfig.settable()]),
        ("set", ["trian=3"], "trian", [f.name for f in dataclasses.fields(RunConfig)]),
        (
            "set",
            ["train.optimizer.nme=adamw"],
            "train.optimizer.nme",
            ["learning_rate", "lr_scheduler", "max_grad_norm", "name", "warmup_steps", "weight_decay"],
        ),
    ],
)
def test_unknown_key_messages_list_every_key_of_their_section_uncut(tmp_path, where, overrides, key, known):
    path = None
    if where == "yaml":
        path = tmp_path / "typo.yaml"
        path.write_text("train:\n  lora_rnak: 3\n")
    with pytest.raises(ConfigError) as refused:
        load_run_config(path, overrides, check=False)
    message = str(refused.value)
    prefix = f"{path}: {key}" if path else f"--set {key}"
    assert message.startswith(f"{prefix}: unknown key (did you mean '")
    section = key.rsplit(".", 1)[0] if "." in key else None
    listing = f"known keys of {section}: " if section else "known top-level keys: "
    assert message.endswith(listing + ", ".join(sorted(known))), message
    assert "left out" not in message and refused.value.key == key


def test_a_huge_unknown_key_is_shortened_but_the_list_of_keys_is_not():
    with pytest.raises(ConfigError) as refused:
        load_run_config(None, ["render." + "k" * 100_000 + "=1"], check=False)
    message = str(refused.value)
    listing = "known keys of render: " + ", ".join(sorted(f.name for f in dataclasses.fields(type(RunConfig().render))))
    assert message.endswith(listing) and "characters left out" in message
    assert len(message) < 400 + len(listing)
