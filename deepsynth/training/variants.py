"""Several adapters in one training run: ``train.adapters`` (named variants) and ``train.sweep`` (a grid).

A variant is the run's ``train`` section with some keys overridden (rank, alpha, dropout, targets,
learning rate, epochs, seed, instruction, ...) and, optionally, its own slice of the training split
(``data``: a :class:`DataSelector`). Keys that describe the one base model, the one dataset read or
the run itself (model, dtype, QLoRA, device, mode, processes, checkpoints, ...) are refused per
variant: every adapter of a run is attached to the same base, loaded once.

``train.sweep`` maps keys to lists of values; their product expands into variants named after their
values (``lora_rank_4-learning_rate_0.01``). Given together, every ``train.adapters`` entry is
crossed with every sweep point (``legal-lora_rank_4``).

This module takes the config class from the object it is given (no import of
:mod:`deepsynth.training.config`, which calls :func:`expand_variants` to check a config).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deepsynth.configuration import brief, from_dict
from deepsynth.errors import ConfigError

#: Keys a variant may override: everything about the adapter and its optimisation, nothing about the base or the run.
VARIANT_KEYS = (
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "lora_target_experts",
    "lora_preset",
    "instruction_prompt",
    "max_length",
    "max_summary_tokens",
    "batch_size",
    "gradient_accumulation_steps",
    "num_epochs",
    "max_steps",
    "optimizer",
    "learning_rate",
    "weight_decay",
    "warmup_steps",
    "lr_scheduler",
    "max_grad_norm",
    "seed",
)
#: Columns of the rendered dataset a selector may test.
SELECTOR_COLUMNS = ("task", "id", "instruction", "text", "summary")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_OPTIMIZER_SHORTHANDS = ("learning_rate", "weight_decay", "warmup_steps", "lr_scheduler", "max_grad_norm")


@dataclass(frozen=True)
class DataSelector:
    """The documents of the training split one variant trains on: ``column`` equals / is in / starts with.

    Attributes:
        column: ``task`` (the source's task column, see ``ingest.task_column``), ``id``, ``instruction``,
            ``text`` or ``summary``.
        equals: The value the column must have.
        one_of: Values the column may have (``in:`` in YAML).
        prefix: A prefix the column must start with (e.g. an id prefix per domain).
    """

    column: str
    equals: str | None = None
    one_of: tuple[str, ...] | None = None
    prefix: str | None = None

    @classmethod
    def parse(cls, data: Any, where: str) -> DataSelector:
        """Build from ``{column: ..., equals | in | prefix: ...}``; ``where`` names the key in errors (ValueError)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected a mapping {{column: ..., equals: ...}}, got {brief(data)}")
        unknown = sorted(set(data) - {"column", "equals", "in", "prefix"})
        if unknown:
            raise ValueError(
                f"{where}.{unknown[0]}: unknown key; a selector takes column and one of equals, in, prefix"
            )
        column = data.get("column")
        if column not in SELECTOR_COLUMNS:
            raise ValueError(f"{where}.column: {brief(column)} is not one of {list(SELECTOR_COLUMNS)}")
        tests = [k for k in ("equals", "in", "prefix") if data.get(k) is not None]
        if len(tests) != 1:
            raise ValueError(f"{where}: give exactly one of equals, in, prefix (got {tests or 'none'})")
        value = data[tests[0]]
        if tests[0] == "in":
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{where}.in: expected a non-empty list of strings, got {brief(value)}")
            return cls(column, one_of=tuple(value))
        if not isinstance(value, str) or not value:
            raise ValueError(f"{where}.{tests[0]}: expected a non-empty string, got {brief(value)}")
        return cls(column, equals=value) if tests[0] == "equals" else cls(column, prefix=value)

    def matches(self, row: Any) -> bool:
        """True when ``row`` (a mapping or an object with the column as attribute) is selected."""
        value = row.get(self.column) if isinstance(row, Mapping) else getattr(row, self.column)
        if value is None:
            return False
        if self.equals is not None:
            return value == self.equals
        if self.one_of is not None:
            return value in self.one_of
        return value.startswith(self.prefix)

    def describe(self) -> str:
        """One line: ``id starts with 'legal-'``."""
        if self.equals is not None:
            return f"{self.column} == {self.equals!r}"
        if self.one_of is not None:
            return f"{self.column} in {list(self.one_of)}"
        return f"{self.column} starts with {self.prefix!r}"


@dataclass
class Variant:
    """One adapter of a multi-adapter run.

    Attributes:
        name: Adapter name (peft adapter name, output subfolder, registered variant).
        config: The run's ``train`` config with this variant's overrides (its own ``adapters``/``sweep`` empty).
        overrides: The keys this variant set, as written (recorded with the adapter).
        data: Its slice of the training split (``None``: all of it).
        key: Where it was defined, for messages (``train.adapters[1]``, ``train.sweep``).
    """

    name: str
    config: Any
    overrides: dict[str, Any]
    data: DataSelector | None = None
    key: str = "train.adapters"


def _override_config(base: Any, overrides: Mapping[str, Any], where: str) -> Any:
    """``base`` with ``overrides`` applied, built strictly through ``from_dict`` (types and cross-key checks)."""
    values = {k: v for k, v in base.to_dict().items() if k not in ("adapters", "sweep", "adapters_mode")}
    optimizer = dict(values["optimizer"])
    changes = dict(overrides)
    if "optimizer" in changes:
        given = changes.pop("optimizer")
        optimizer.update({"name": given} if isinstance(given, str) else dict(given or {}))
    for name in _OPTIMIZER_SHORTHANDS:
        if name in changes:
            optimizer[name] = changes.pop(name)
    values["optimizer"] = optimizer
    if "lora_preset" in changes:  # a preset names its own lora_* values: start those from the defaults
        for name in ("lora_rank", "lora_alpha", "lora_dropout"):
            values.pop(name, None)
    elif values.get("lora_preset") and {"lora_rank", "lora_alpha", "lora_dropout"} & set(changes):
        values["lora_preset"] = None  # the variant's own values replace the run's preset
    values.update(changes)
    try:
        return from_dict(type(base), values, prefix=where)
    except ConfigError as exc:
        message = str(exc)
        raise ValueError(message if message.startswith(where) else f"{where}: {message}") from None


def _check_keys(overrides: Mapping[str, Any], where: str, known: Any) -> None:
    for key in overrides:
        if key in VARIANT_KEYS:
            continue
        if key in known:
            raise ValueError(
                f"{where}.{key}: one setting per run (every adapter shares the base model, the dataset and the "
                f"processes); set train.{key} instead"
            )
        raise ValueError(f"{where}.{key}: unknown key; an adapter takes name, data and per-adapter training keys")


def _sweep_points(sweep: Mapping[str, Any], known: Any) -> list[tuple[str, dict[str, Any]]]:
    """``(name, overrides)`` for every point of the grid, in the order the keys and values were written."""
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"train.sweep.{key}: expected a non-empty list of values, got {brief(values)}")
    _check_keys(sweep, "train.sweep", known)
    points = []
    for combo in itertools.product(*sweep.values()):
        overrides = dict(zip(sweep, combo))
        name = "-".join(f"{key}_{value}" for key, value in overrides.items())
        points.append((re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64], overrides))
    return points


def expand_variants(config: Any) -> list[Variant]:
    """The variants ``config`` (a TrainerConfig) describes; ``[]`` for a plain one-adapter run.

    Raises:
        ValueError: A bad entry, naming its key (``train.adapters[1].lora_rnk``): unknown or per-run keys,
            bad values, duplicate or invalid names, a bad data selector, an empty sweep list.
    """
    entries: list[tuple[str, str, dict[str, Any], DataSelector | None]] = []
    known = type(config).__dataclass_fields__
    for index, entry in enumerate(config.adapters):
        where = f"train.adapters[{index}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected a mapping with a name, got {brief(entry)}")
        overrides = {k: v for k, v in entry.items() if k not in ("name", "data")}
        _check_keys(overrides, where, known)
        selector = DataSelector.parse(entry["data"], f"{where}.data") if entry.get("data") is not None else None
        entries.append((where, entry.get("name"), overrides, selector))
    points = _sweep_points(config.sweep, known) if config.sweep else []
    if points and entries:
        entries = [
            (where, f"{name}-{point}", {**overrides, **more}, selector)
            for where, name, overrides, selector in entries
            for point, more in points
        ]
    elif points:
        entries = [("train.sweep", point, more, None) for point, more in points]
    variants: list[Variant] = []
    seen: dict[str, str] = {}
    for where, name, overrides, selector in entries:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"{where}.name: {brief(name)} is not a valid adapter name (letters, digits, '.', '_', '-'; "
                "at most 64 characters, starting with a letter or digit)"
            )
        if name in "lora_":  # peft would take its keys for another adapter's when loading
            raise ValueError(f"{where}.name: {name!r} is part of peft's parameter prefix 'lora_'; choose another name")
        if name in seen:
            raise ValueError(f"{where}.name: duplicate adapter name {name!r} (also {seen[name]})")
        seen[name] = where
        variant_config = _override_config(config, overrides, where)
        if variant_config.use_qlora != config.use_qlora:
            raise ValueError(f"{where}: QLoRA is one setting per run (one base model); set train.use_qlora instead")
        variants.append(Variant(name, variant_config, dict(overrides), selector, where))
    return variants


def check_multi_adapter(config: Any, variants: list[Variant]) -> None:
    """Run-wide settings a multi-adapter run needs (ValueError naming the key)."""
    if not variants:
        return
    if not config.use_lora:
        raise ValueError("train.adapters/train.sweep: several adapters need use_lora: true")
    if config.train_projector:
        raise ValueError("train.train_projector: the projector is shared by every adapter of a run; set it false")
    if config.use_text_encoder:
        raise ValueError("train.use_text_encoder: not supported with several adapters in one run")
    if config.adapters_mode == "mixed":
        for variant in variants:
            if variant.config.lora_target_experts:
                raise ValueError(
                    f"{variant.key}: adapters_mode mixed batches rows of different adapters through peft's "
                    "per-row adapters, which fused-expert LoRA (lora_target_experts) does not support; use sequential"
                )


def with_variant_paths(variant: Variant, output_dir: str, state_dir: str | None) -> Any:
    """The variant's config writing to ``output_dir/<name>`` and checkpointing under ``state_dir/<name>``."""
    from pathlib import Path

    return dataclasses.replace(
        variant.config,
        output_dir=str(Path(output_dir) / variant.name),
        state_dir=str(Path(state_dir) / variant.name) if state_dir else None,
    )
