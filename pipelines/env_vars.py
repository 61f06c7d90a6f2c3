"""``${VAR}`` / ``${VAR:-default}`` expansion from the environment, for run configs and stack recipes.

Values are expanded when they are used (registering a stack, building a step's settings,
checking the tracking server), so credentials and registries never live in the YAML files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from deepsynth.errors import ConfigError

#: ``${NAME}`` or ``${NAME:-default}``; group 1 is the name, group 2 the default (None without one).
PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def required_vars(text: str) -> set[str]:
    """Names that ``text`` reads without a default (they must be set to expand it)."""
    return {m.group(1) for m in PATTERN.finditer(text) if m.group(2) is None}


def expand(value: Any, where: str, environ: Mapping[str, str] | None = None) -> Any:
    """Expand every ``${VAR}`` in ``value`` (a string, or dicts and lists of them).

    Args:
        value: The value to expand; non-string leaves are returned as they are.
        where: The dotted key (and file) that an error message names.
        environ: The variables to read; the process environment by default.

    Raises:
        ConfigError: A variable without a default is not set.
    """
    environ = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {k: expand(v, f"{where}.{k}", environ) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, f"{where}[{i}]", environ) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set")

    return PATTERN.sub(sub, value)
