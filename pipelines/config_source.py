"""Where the values of a run configuration came from, so that an error names the key as the user set it.

A value comes from the YAML file, a ``--set`` override or a command option; :class:`ConfigSource`
answers where (for a message's prefix), how to say it mid-sentence, and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deepsynth.configuration import MAX_MESSAGE, UnknownKeyError, bounded, error_key
from deepsynth.errors import ConfigError


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
