"""Load a run configuration: one YAML per target (configs/*.yaml), strictly, with ``--set`` overrides.

:class:`ConfigSource` remembers where every value came from (the YAML file, a ``--set``
override, a command option), so an error names the key the way the user wrote it, where they
wrote it, and how to fix it. :func:`load_run_config` checks the whole configuration
(:mod:`pipelines.config_checks`) before anything runs.

YAML is read within bounds (:mod:`deepsynth.yaml_bounds`): an alias bomb in a file or a ``--set``
value is refused before it is built.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from deepsynth.configuration import bounded, brief, from_dict
from deepsynth.errors import ConfigError
from deepsynth.yaml_bounds import load_yaml, read_yaml
from pipelines.config import RunConfig
from pipelines.config_checks import check_run_config
from pipelines.config_source import ConfigSource


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-parsed value (no aliases)."""
    if "=" not in item:
        raise ConfigError(f"--set {brief(item)}: expected dotted.key=value")
    key, raw = item.split("=", 1)
    path = [part for part in key.strip().split(".") if part]
    if not path:
        raise ConfigError(f"--set {brief(item)}: empty key")
    try:
        value = load_yaml(raw, f"--set {bounded(key.strip(), 100)}", aliases=False) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(bounded(f"--set {brief(item)}: cannot parse value: {exc}")) from None
    return path, value


def set_key(data: dict[str, Any], path: list[str], value: Any, label: str) -> None:
    """Set ``data[path[0]][path[1]]… = value``, creating sections; ``label`` names the setting in errors."""
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{label}: '{part}' is not a section", key=".".join(path))
        node = child
    node[path[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set dotted.key=value`` overrides to a raw config mapping (in place; returned)."""
    for item in overrides:
        path, value = parse_override(item)
        set_key(data, path, value, f"--set {item!r}")
    return data


def load_run_config(
    path: str | Path | None,
    overrides: list[str] | None = None,
    options: dict[str, tuple[str, Any]] | None = None,
    check: bool = True,
) -> RunConfig:
    """:func:`load_with_source`'s configuration alone."""
    return load_with_source(path, overrides, options, check)[0]


def load_with_source(
    path: str | Path | None,
    overrides: list[str] | None = None,
    options: dict[str, tuple[str, Any]] | None = None,
    check: bool = True,
) -> tuple[RunConfig, ConfigSource]:
    """Load ``path`` strictly (unknown keys are errors), apply ``--set`` overrides, then command options.

    Args:
        path: The YAML file; None starts from the defaults.
        overrides: ``dotted.key=value`` items (values parsed as YAML).
        options: dotted key → (option name, value) from the command line; None values are not applied.
        check: Also run :func:`pipelines.config_checks.check_run_config` (reads the source's columns and splits).

    Returns:
        The configuration and where its values came from.

    Raises:
        ConfigError: Naming the key, where it was set and the fix (exit code 2).
    """
    yaml_data = read_yaml(path) if path is not None else {}
    source = ConfigSource(
        str(path) if path is not None else None, yaml_data, list(overrides or []), dict(options or {})
    )
    data = apply_overrides(copy.deepcopy(yaml_data), source.overrides)
    for dotted, (option, value) in source.options.items():
        if value is not None:
            set_key(data, dotted.split("."), value, option)
    try:
        config = from_dict(RunConfig, data)
    except ConfigError as exc:
        raise source.explain(exc) from None
    if check:
        check_run_config(config, source)
    return config, source
