"""Configs for the editor: the knobs (from the configuration reference), presets, validation, estimate, save.

Every knob and its help text come from :func:`pipelines.config_reference.sections` (the source of
``docs/configuration.md`` and ``deepsynth config keys``). An edited config is a file of ``configs/`` plus
changed values, which become ``--set KEY=VALUE`` overrides: validation is exactly ``deepsynth run``'s
(:func:`pipelines.config_loading.load_with_source`), and a run launches with the same arguments.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from pathlib import Path
from typing import Any

import yaml
from fastapi import HTTPException

from deepsynth.configuration import to_dict
from deepsynth.errors import ConfigError, DeepSynthError
from deepsynth_cli.studio.security import check_name

#: Run-configuration sections the editor shows (the reference also documents ``serve``, which runs elsewhere).
SKIPPED_SECTIONS = ("serve",)
SAVED_HEADER = "# Saved by DeepSynth Studio from configs/{base}.yaml"


def knob_sections() -> list[dict[str, Any]]:
    """The configuration reference's sections of the run configuration, as JSON (key, type, default, help)."""
    from pipelines.config_reference import sections

    return [s.to_dict() for s in sections() if s.name not in SKIPPED_SECTIONS]


def presets() -> list[dict[str, Any]]:
    """The LoRA presets (name and the ``train.*`` values each sets)."""
    from deepsynth.training.config import PRESETS

    return [{"name": p.name, "settings": {f"train.{k}": v for k, v in p.settings().items()}} for p in PRESETS.values()]


def config_names(configs_dir: Path) -> list[str]:
    """The run configurations in ``configs/`` (top-level YAML files, by name without ``.yaml``)."""
    return sorted(p.stem for p in configs_dir.glob("*.yaml") if p.is_file())


def config_path(configs_dir: Path, name: str) -> Path:
    """``configs/NAME.yaml`` for a plain name that exists; HTTP 400/404 otherwise."""
    path = configs_dir / f"{check_name(name, 'config')}.yaml"
    if not path.is_file():
        raise HTTPException(404, f"config {name!r}: no configs/{name}.yaml (configs: {config_names(configs_dir)})")
    return path


def overrides(values: dict[str, Any]) -> list[str]:
    """``KEY=VALUE`` items for ``--set`` (JSON is YAML, so a value round-trips exactly)."""
    return [f"{key}={json.dumps(value)}" for key, value in values.items()]


def _value_at(config: Any, key: str) -> Any:
    node = config
    for part in key.split("."):
        node = getattr(node, part)
    return to_dict(node) if dataclasses.is_dataclass(node) else node


def values(path: Path) -> dict[str, Any]:
    """Every key of the reference with its value in the config at ``path`` (defaults filled in)."""
    from pipelines.config_loading import load_run_config

    config = load_run_config(path, check=False)
    return {k["key"]: _value_at(config, k["key"]) for s in knob_sections() for k in s["keys"]}


def _named_key(message: str, changed: dict[str, Any]) -> str | None:
    """The changed key a message without a dotted key is about (``lora_rank must be at least 1``), if one is named."""
    named = [key for key in changed if re.search(rf"\b{re.escape(key.rsplit('.', 1)[-1])}\b", message)]
    return named[0] if len(named) == 1 else None


def validate(path: Path, changed: dict[str, Any]) -> dict[str, Any]:
    """``deepsynth run --config PATH --set …``'s pre-flight checks: ``{"ok": true}`` or the error with its key."""
    from pipelines.config_loading import load_with_source

    try:
        load_with_source(path, overrides(changed))
    except ConfigError as exc:
        return {"ok": False, "errors": [{"key": exc.key or _named_key(str(exc), changed), "message": str(exc)}]}
    except DeepSynthError as exc:
        return {"ok": False, "errors": [{"key": None, "message": str(exc)}]}
    return {"ok": True, "errors": []}


def load(path: Path, changed: dict[str, Any]) -> Any:
    """The run configuration (not checked against its data source): HTTP 422 with the message if it is invalid."""
    from pipelines.config_loading import load_run_config

    try:
        return load_run_config(path, overrides(changed), check=False)
    except ConfigError as exc:
        raise HTTPException(422, {"key": exc.key, "message": str(exc)}) from None


#: The ``train`` keys the estimate depends on (its cache key).
ESTIMATE_KEYS = (
    "model_name",
    "model_dtype",
    "use_lora",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "lora_target_experts",
    "train_projector",
    "use_qlora",
    "qlora_type",
    "qlora_double_quant",
)


@functools.lru_cache(maxsize=32)
def _estimate(settings_json: str) -> dict[str, Any]:
    import torch

    from deepsynth.models.memory_estimate import estimate
    from deepsynth.training.config import TrainerConfig
    from deepsynth.training.lora_config import build_lora_config

    train = TrainerConfig(**json.loads(settings_json))
    return estimate(
        train.model_name,
        build_lora_config(train) if train.use_lora else None,
        dtype=getattr(torch, train.model_dtype),
        train_projector=train.train_projector,
        quant_type=train.qlora_type,
        double_quant=train.qlora_double_quant,
    ).to_dict()


def estimate(path: Path, changed: dict[str, Any]) -> dict[str, Any]:
    """Trainable parameters (exact, meta-device model) and full-size weight memory of the edited config."""
    train = load(path, changed).train
    settings = {key: getattr(train, key) for key in ESTIMATE_KEYS}
    try:
        found = _estimate(json.dumps(settings, sort_keys=True))
    except ConfigError as exc:
        raise HTTPException(422, {"key": exc.key, "message": str(exc)}) from None
    return {**found, "dtype": train.model_dtype, "configured": "qlora" if train.use_qlora else "lora"}


def save(configs_dir: Path, base: str, changed: dict[str, Any], name: str) -> dict[str, Any]:
    """Write the edited config as ``configs/NAME.yaml`` (a new name; checked as ``deepsynth run`` would first)."""
    from deepsynth.yaml_bounds import read_yaml
    from pipelines.config_loading import apply_overrides

    source = config_path(configs_dir, base)
    target = configs_dir / f"{check_name(name, 'name')}.yaml"
    if target.exists():
        raise HTTPException(409, f"configs/{name}.yaml exists already: choose a new name")
    checked = validate(source, changed)
    if not checked["ok"]:
        raise HTTPException(422, checked["errors"][0])
    data = apply_overrides(read_yaml(source), overrides(changed))
    header = SAVED_HEADER.format(base=base) + f"\n# Launch: deepsynth run --config configs/{name}.yaml\n"
    text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    temporary = target.with_suffix(".yaml.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)
    return {"name": name, "path": f"configs/{name}.yaml"}
