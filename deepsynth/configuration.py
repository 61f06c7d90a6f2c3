"""Strict construction of config dataclasses from plain dicts (YAML/JSON).

Every config section is a ``@dataclass`` whose fields carry a ``help`` string in their
metadata. :func:`from_dict` builds one from a mapping, recursing into nested dataclass
fields, and rejects unknown keys and wrongly typed values with a message that names the
source file and the dotted key.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import reprlib
import types
import typing
from typing import Any, Mapping, TypeVar

from deepsynth.errors import ConfigError

T = TypeVar("T")

#: The longest error message a config problem prints: a value from a file or ``--set`` may be huge.
MAX_MESSAGE = 400
_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = 80
_BRIEF.maxlist = _BRIEF.maxtuple = _BRIEF.maxdict = _BRIEF.maxset = 6


def brief(value: Any) -> str:
    """``repr(value)`` shortened to a few dozen characters, whatever the value's size."""
    return _BRIEF.repr(value)


def bounded(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` cut in the middle to at most about ``limit`` characters, saying how much was left out."""
    if len(message) <= limit:
        return message
    keep = limit // 2 - 20
    return f"{message[:keep]} … [{len(message) - 2 * keep:,} characters left out] … {message[-keep:]}"


def knob(default: Any = dataclasses.MISSING, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field with help text.

    ``default`` may be a list or dict (copied per instance); pass ``default_factory=`` for
    nested config sections.
    """
    if isinstance(default, (list, dict, set)):
        value = default
        kwargs["default_factory"] = lambda: type(value)(value)
        return dataclasses.field(metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def _where(source: str | None, key: str) -> str:
    return f"{source}: {key}" if source else key


def _error(source: str | None, key: str, problem: str) -> ConfigError:
    """A :class:`ConfigError` for ``key`` (its dotted path) that names the source and the key."""
    return ConfigError(bounded(f"{_where(source, key)}: {problem}"), key=key)


#: ``section.key: problem`` — how ``__post_init__`` checks word their ValueErrors.
_KEY_PREFIX = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")


def error_key(message: str) -> str | None:
    """The dotted key a ``section.key: problem`` message starts with, if it does."""
    named = _KEY_PREFIX.match(message)
    return named.group(1) if named else None


def _suggestion(cls: type, key: str, fields: Any, prefix: str) -> str:
    """`` (did you mean 'key'?)`` for a misspelt key; ``'section.key'`` for a key of a nested section."""
    close = difflib.get_close_matches(key, fields, n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    hints = typing.get_type_hints(cls)
    for name in fields:
        nested = hints[name]
        if dataclasses.is_dataclass(nested) and key in {f.name for f in dataclasses.fields(nested)}:
            return f" (did you mean '{prefix + '.' if prefix else ''}{name}.{key}'?)"
    return ""


def _coerce(value: Any, hint: Any, source: str | None, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if isinstance(hint, dataclasses.InitVar):
        return _coerce(value, hint.type, source, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, source, key)
            except ConfigError as exc:
                # A mapping was meant for the section, anything else for a plain alternative.
                errors.append((dataclasses.is_dataclass(arg) == isinstance(value, Mapping), exc))
        errors.sort(key=lambda e: not e[0])
        raise errors[0][1] if errors else _error(source, key, f"invalid value {brief(value)}")
    if origin is typing.Literal:
        if value not in args:
            raise _error(source, key, f"{brief(value)} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, Mapping):
            raise _error(source, key, f"expected a mapping, got {type(value).__name__}")
        return from_dict(hint, value, source=source, prefix=key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _error(source, key, f"expected a list, got {type(value).__name__}")
        item = args[0] if args else Any
        return [_coerce(v, item, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _error(source, key, f"expected a mapping, got {type(value).__name__}")
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool):
        raise _error(source, key, f"expected {hint.__name__}, got a boolean")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise _error(source, key, f"expected {hint.__name__}, got {type(value).__name__} {brief(value)}")
    return value


def from_dict(cls: type[T], data: Mapping[str, Any] | None, source: str | None = None, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and bad types raise :class:`ConfigError`."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    # ``__dataclass_fields__`` also holds init-only keys (``InitVar``), which fields() leaves out.
    fields = {name: f for name, f in cls.__dataclass_fields__.items()
              if f.init and f._field_type is not dataclasses._FIELD_CLASSVAR}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        hint = _suggestion(cls, key, fields, prefix)
        dotted = f"{prefix}.{key}" if prefix else key
        raise _error(source, dotted, f"unknown key{hint}; known keys: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in data.items():
        dotted = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(value, hints[name], source, dotted)
    try:
        obj = cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise _error(source, prefix or cls.__name__, bounded(str(exc))) from None
    except ValueError as exc:  # __post_init__ refused a value; its message names the key (and may quote the value)
        message = bounded(str(exc))
        raise ConfigError(f"{source}: {message}" if source else message, key=error_key(message)) from None
    return obj


def check_choices(obj: Any, section: str) -> None:
    """Refuse a value outside its ``Literal[...]`` choices in dataclass ``obj`` (call from ``__post_init__``).

    Raises:
        ValueError: Naming ``section.field``, the value and the allowed choices.
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        choices = typing.get_args(hints[f.name]) if typing.get_origin(hints[f.name]) is typing.Literal else None
        value = getattr(obj, f.name)
        if choices and value not in choices:
            raise ValueError(f"{section}.{f.name}: {value!r} is not one of {list(choices)}")


def flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nested sections as dotted keys: ``{"optimizer": {"name": ...}}`` → ``{"optimizer.name": ...}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-dict view of a config dataclass (for logging and round trips)."""
    return dataclasses.asdict(obj)


def describe(cls: type) -> list[tuple[str, str, Any]]:
    """(name, help, default) for every field of config dataclass ``cls`` (tests check every knob has help)."""
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        )
        rows.append((f.name, f.metadata.get("help", ""), default))
    return rows
