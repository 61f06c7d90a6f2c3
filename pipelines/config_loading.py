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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deepsynth.configuration import MAX_MESSAGE, UnknownKeyError, bounded, brief, error_key, from_dict
from deepsynth.errors import ConfigError
from pipelines.config import RunConfig
from deepsynth.yaml_bounds import check_file_size, load_yaml

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


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    check_file_size(path)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _covers(given: str, key: str) -> bool:
    """True when setting ``given`` set ``key`` (the same key, or a section or list holding it)."""
    return key == given or key.startswith((given + ".", given + "["))


@dataclass
class ConfigSource:
    """Where the values of a run configuration came from, for messages that say where to fix them.

    Args:
        path: The YAML file (None: no file).
        yaml_data: What the file held.
        overrides: ``--set`` items, in order.
        options: Command options that set a key: dotted key → (option, value); a value of None
            means the option exists but was not given (messages still suggest it).
    """

    path: str | None = None
    yaml_data: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    options: dict[str, tuple[str, Any]] = field(default_factory=dict)

    def _given_by(self, key: str) -> str | None:
        for dotted, (option, value) in self.options.items():
            if value is not None and _covers(dotted, key):
                return option
        for item in reversed(self.overrides):
            written = item.split("=", 1)[0].strip()
            if _covers(written, key):
                return f"--set {written}"
        return None

    def _in_yaml(self, key: str) -> bool:
        node: Any = self.yaml_data
        for part in key.split("[")[0].split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def where(self, key: str | None) -> str:
        """Where ``key`` was set, as a message prefix: ``--set render.modes``, ``f.yaml: train.mode``, ``--mode``."""
        if key is None:
            return self.path or "configuration"
        given = self._given_by(key)
        if given:
            return given
        return f"{self.path}: {key}" if self.path and self._in_yaml(key) else key

    def label(self, key: str) -> str:
        """``key`` and where it was set, for the middle of a sentence: ``train.mode (configs/q.yaml)``."""
        given = self._given_by(key)
        if given:
            return given if given.startswith("--set") else f"{given} ({key})"
        return f"{key} ({self.path})" if self.path and self._in_yaml(key) else f"{key} (default)"

    def fix(self, key: str, value: str) -> str:
        """How to set ``key`` to ``value`` here: the command's option for it, else ``--set key=value``."""
        option = self.options.get(key)
        return f"{option[0]} {value}" if option else f"--set {key}={value}"

    def explain(self, exc: ConfigError) -> ConfigError:
        """``exc`` reworded to name where its key was set (the key as the user wrote it).

        An unknown key's message keeps its list of the section's keys whole.
        """
        message = str(exc)
        key = exc.key or error_key(message)
        if isinstance(exc, UnknownKeyError):
            return exc.moved(self.where(key))
        problem = message.split(f"{key}: ", 1)[1] if key and f"{key}: " in message else message
        # the problem was bounded where it was raised; leave room for the longer prefix
        return ConfigError(bounded(f"{self.where(key)}: {problem}", MAX_MESSAGE + 150), key=key)


def load_run_config(path: str | Path | None, overrides: list[str] | None = None,
                    options: dict[str, tuple[str, Any]] | None = None, check: bool = True) -> RunConfig:
    """:func:`load_with_source`'s configuration alone."""
    return load_with_source(path, overrides, options, check)[0]


def load_with_source(path: str | Path | None, overrides: list[str] | None = None,
                     options: dict[str, tuple[str, Any]] | None = None,
                     check: bool = True) -> tuple[RunConfig, ConfigSource]:
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
    source = ConfigSource(str(path) if path is not None else None, yaml_data, list(overrides or []), dict(options or {}))
    data = apply_overrides(copy.deepcopy(yaml_data), source.overrides)
    for dotted, (option, value) in source.options.items():
        if value is not None:
            set_key(data, dotted.split("."), value, option)
    try:
        config = from_dict(RunConfig, data)
    except ConfigError as exc:
        raise source.explain(exc) from None
    if check:
        from pipelines.config_checks import check_run_config

        check_run_config(config, source)
    return config, source
