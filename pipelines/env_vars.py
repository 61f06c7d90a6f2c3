"""``${VAR}`` / ``${VAR:-default}`` expansion from the environment, for run configs and stack recipes.

Values are expanded when they are used (registering a stack, building a step's settings,
checking the tracking server), so credentials and registries never live in the YAML files.
Only the keys documented as taking environment references may hold one: ZenML replaces
``${NAME}`` in every string of a run's configuration, so anywhere else (an instruction prompt, a
run name) a reference would carry the variable's value into the data, the run's name and the
stores (:func:`refuse_references`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from deepsynth.errors import ConfigError

#: ``${NAME}`` or ``${NAME:-default}``; group 1 is the name, group 2 the default (None without one).
PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


#: What ZenML substitutes (``zenml.utils.env_utils``: ``${NAME}``, digits allowed first) and this
#: module's ``${NAME:-default}``.
REFERENCE = re.compile(r"\$\{[A-Za-z0-9_]+(?::-[^}]*)?\}")


def references(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """``(dotted key, reference)`` for every environment reference in a config dataclass's strings.

    Mapping keys and values are reported under the mapping's own key.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from references(getattr(value, f.name), f"{key}.{f.name}" if key else f.name)
    elif isinstance(value, str):
        found = REFERENCE.search(value)
        if found:
            yield key, found.group(0)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from references(k, key)
            yield from references(v, key)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from references(v, f"{key}[{i}]")


def refuse_references(config: Any, allowed: tuple[str, ...]) -> None:
    """Refuse an environment reference in any string of ``config`` outside the ``allowed`` dotted keys.

    Raises:
        ValueError: ``key: '${NAME}' ...``, naming the allowed keys (never the variable's value).
    """
    found = [(key, reference) for key, reference in references(config) if key not in allowed]
    if found:
        (key, reference), others = found[0], sorted({k for k, _ in found[1:]} - {found[0][0]})
        shown = reference if len(reference) <= 60 else reference[:57] + "...}"
        also = f" (also in {', '.join(others[:5])})" if others else ""
        raise ValueError(
            f"{key}: {shown!r} would be replaced by the environment variable's value when the run starts "
            f"(ZenML expands ${{NAME}} in every string of a run's configuration); this key takes no "
            f"environment references (only {', '.join(allowed)} do): write it without '${{'{also}"
        )


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
