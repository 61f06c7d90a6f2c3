"""Strict construction of config dataclasses from plain dicts (YAML/JSON).

Every config section is a ``@dataclass`` whose fields carry a ``help`` string in their
metadata. :func:`from_dict` builds one from a mapping, recursing into nested dataclass
fields, and rejects unknown keys and wrongly typed values with a message that names the
source file and the dotted key. A section that derives from :class:`Section` also refuses,
on assignment, a name it does not have and a value outside a field's ``Literal`` choices.
:func:`key_docs` lists every key with its type, default and help (the configuration reference).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import os
import re
import reprlib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

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


class UnknownKeyError(ConfigError):
    """A key its section does not have; the message lists all the section's keys, never cut.

    Args:
        where: The file and dotted key (or the option) that named it; shortened if huge.
        key: The dotted key.
        hint: `` (did you mean 'x'?)`` or empty.
        known: The section's keys.
        section: The section's dotted name; empty for the top level.
    """

    def __init__(self, where: str, key: str, hint: str, known: list[str], section: str):
        self.where, self.hint, self.known, self.section = where, hint, sorted(known), section
        listing = f"known keys of {section}" if section else "known top-level keys"
        super().__init__(
            f"{bounded(where, MAX_MESSAGE // 2)}: unknown key{hint}; {listing}: {', '.join(self.known)}", key=key
        )

    def moved(self, where: str) -> UnknownKeyError:
        """The same error, said to come from ``where`` (e.g. ``--set train.lora_rnak``)."""
        return UnknownKeyError(where, self.key or "", self.hint, self.known, self.section)


class UnknownSettingError(ConfigError, AttributeError):
    """Assignment to a name a config section does not have (``config.lora_rnak = 3``)."""


class SettingValueError(ConfigError, ValueError):
    """Assignment of a value outside a field's ``Literal`` choices (``config.mixed_precision = "fp8"``)."""


@functools.cache
def _field_hints(cls: type) -> dict[str, Any]:
    """Type hints of ``cls``'s dataclass fields (computed once per class)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _choices_refused(hint: Any, value: Any) -> list[Any] | None:
    """The allowed values if ``value`` lies outside ``hint``'s ``Literal`` choices, else None.

    In a union (``OptimizerConfig | Literal["adamw", ...]``) only values of the choices' own types
    are checked; None passes an optional hint.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return None if value in args else list(args)
    if origin not in (typing.Union, types.UnionType) or (value is None and type(None) in args):
        return None
    choices = [c for arg in args if typing.get_origin(arg) is typing.Literal for c in typing.get_args(arg)]
    if not choices or value in choices or not any(type(value) is type(c) for c in choices):
        return None
    return choices


# UTF-16 surrogates: in a Python str only from an unpaired escape ("\ud800" in YAML or JSON); UTF-8 cannot encode one.
_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str) -> str | None:
    """``lone surrogate U+D800 at character 8`` for the first unpaired surrogate in ``text``, else None."""
    lone = _SURROGATE.search(text)
    return None if lone is None else f"lone surrogate U+{ord(lone.group()):04X} at character {lone.start() + 1}"


def unusable_value(value: Any) -> tuple[str, str] | None:
    """``(where, problem)`` for the first value inside ``value`` no setting can use, else None.

    Refused anywhere in a configuration, whatever the key's type: a NaN or infinite float (YAML
    ``.nan``/``.inf``, JSON ``NaN``), which passes every ``<``/``>`` bound, and a string holding a lone
    surrogate, which no file, database or tokenizer can encode. ``where`` is the path inside ``value``
    (``.train`` or ``[2]``; empty for ``value`` itself). Nested lists and mappings are walked without recursion.
    """
    stack = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return where, f"{item} is not a finite number (NaN and infinity are refused)"
        if isinstance(item, str):
            problem = lone_surrogate(item)
            if problem is not None:
                return where, f"{problem}: not valid Unicode"
        elif isinstance(item, Mapping):
            stack.extend((f"{where}.{k}", v) for k, v in reversed(list(item.items())))
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{where}[{i}]", v) for i, v in reversed(list(enumerate(item))))
    return None


class Section:
    """Base of the config dataclasses: assignment is checked like a key in a file.

    ``config.lora_rnak = 3`` raises :class:`UnknownSettingError` (with a did-you-mean);
    ``config.mixed_precision = "fp8"`` raises :class:`SettingValueError` listing the allowed values,
    on construction as on later assignment; so does a NaN or infinite number, or a lone surrogate
    (:func:`unusable_value`), whatever the field's type. Names starting with ``_`` are not checked.
    """

    #: How messages name the section (``train``, ``train.optimizer``); set by each subclass.
    _section = ""

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            self._check_assignment(name, value)
        super().__setattr__(name, value)

    @classmethod
    def settable(cls) -> list[str]:
        """The names that may be assigned: the fields and the properties (shorthands) of the class."""
        properties = [name for name in dir(cls) if isinstance(getattr(cls, name, None), property)]
        return sorted([*_field_hints(cls), *properties])

    def _check_assignment(self, name: str, value: Any) -> None:
        cls = type(self)
        hints = _field_hints(cls)
        label = cls._section or cls.__name__
        if name not in hints:
            if isinstance(getattr(cls, name, None), property):
                return
            hint = _suggestion(cls, name, cls.settable(), "")
            raise UnknownSettingError(
                f"{cls.__name__} has no setting {brief(name)}{hint}; its settings: {', '.join(cls.settable())}",
                key=f"{label}.{name}",
            )
        unusable = unusable_value(value)
        if unusable is not None:
            where, problem = unusable
            raise SettingValueError(f"{label}.{name}{where}: {problem}", key=f"{label}.{name}{where}")
        refused = _choices_refused(hints[name], value)
        if refused is not None:
            raise SettingValueError(f"{label}.{name}: {brief(value)} is not one of {refused}", key=f"{label}.{name}")


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
    fields = {
        name: f
        for name, f in cls.__dataclass_fields__.items()
        if f.init and f._field_type is not dataclasses._FIELD_CLASSVAR
    }
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        hint = _suggestion(cls, key, fields, prefix)
        dotted = f"{prefix}.{key}" if prefix else key
        raise UnknownKeyError(_where(source, dotted), dotted, hint, list(fields), prefix)
    kwargs = {}
    for name, value in data.items():
        dotted = f"{prefix}.{name}" if prefix else name
        unusable = unusable_value(value)
        if unusable is not None:  # named as written (train.learning_rate), before any shorthand moves it
            raise _error(source, dotted + unusable[0], unusable[1])
        kwargs[name] = _coerce(value, hints[name], source, dotted)
    try:
        obj = cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise _error(source, prefix or cls.__name__, bounded(str(exc))) from None
    except ValueError as exc:  # __post_init__ refused a value; its message names the key (and may quote the value)
        message = _keyed(bounded(str(exc)), fields, prefix)
        raise ConfigError(f"{source}: {message}" if source else message, key=error_key(message)) from None
    return obj


def _keyed(message: str, fields: Any, prefix: str) -> str:
    """``message`` as ``section.key: problem`` when it starts with a bare field name (``lora_rank must be ...``)."""
    if error_key(message) is not None:
        return message
    name, _, rest = message.partition(" ")
    if name not in fields or not rest:
        return message
    return f"{prefix + '.' if prefix else ''}{name}: {rest}"


def from_json(cls: type[T], path_or_text: str | os.PathLike, what: str) -> T:
    """Build ``cls`` from a JSON job configuration: a file's path, or the JSON text itself (starts with ``{``).

    Args:
        cls: The config dataclass (built with :func:`from_dict`: unknown keys are errors).
        path_or_text: A path to a JSON file, or a JSON object as text.
        what: What the configuration is, for messages about text that names no file ("training config").

    Raises:
        ConfigError: The file cannot be read, is not JSON, or holds unknown keys or bad values.
    """
    text, source = str(path_or_text), None
    if not text.lstrip().startswith("{"):
        source = text
        try:
            text = Path(path_or_text).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read the {what} ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source or what}: invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source or what}: expected a JSON object")
    return from_dict(cls, data, source=source)


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


def _default(f: dataclasses.Field) -> Any:
    """A field's default value (its factory called); None when it has none."""
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def describe(cls: type) -> list[tuple[str, str, Any]]:
    """(name, help, default) for every field of config dataclass ``cls`` (tests check every knob has help)."""
    return [(f.name, f.metadata.get("help", ""), _default(f)) for f in dataclasses.fields(cls)]


def type_label(hint: Any) -> str:
    """A type as the reference prints it: ``int``, ``str | null``, ``list[str]``, ``"nf4" | "fp4"``, ``section``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(hint, dataclasses.InitVar):
        return type_label(hint.type)
    if hint is type(None):
        return "null"
    if hint is Any:
        return "any"
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_label(a) for a in args)
    if origin in (list, tuple, dict):
        return f"{origin.__name__}[{', '.join(type_label(a) for a in args)}]"
    if dataclasses.is_dataclass(hint):
        return "section"
    return getattr(hint, "__name__", str(hint))


@dataclasses.dataclass(frozen=True)
class KeyDoc:
    """One key of the configuration reference.

    Attributes:
        key: Dotted key (``train.optimizer.learning_rate``).
        type: :func:`type_label` of its type.
        default: Its default value (JSON-able); None for null.
        help: The knob's help text.
    """

    key: str
    type: str
    default: Any
    help: str


def _nested(hint: Any) -> type | None:
    """The config dataclass a field holds (alone or as one alternative of a union), if any."""
    candidates = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return next((c for c in candidates if dataclasses.is_dataclass(c)), None)


def key_docs(cls: type, prefix: str = "") -> list[KeyDoc]:
    """Every key ``from_dict(cls, ...)`` accepts, nested sections flattened to dotted keys, in field order.

    A nested section gets no row of its own unless it may also be written as a plain value
    (``train.optimizer: adamw``); init-only shorthands take their help from the property that
    reads and writes them.
    """
    hints = typing.get_type_hints(cls)
    docs: list[KeyDoc] = []
    for f in cls.__dataclass_fields__.values():
        if not f.init or f._field_type is dataclasses._FIELD_CLASSVAR:
            continue
        key, hint = f"{prefix}.{f.name}" if prefix else f.name, hints[f.name]
        nested = _nested(hint)
        shorthand = getattr(cls, f.name, None)
        help_text = f.metadata.get("help") or (shorthand.__doc__ if isinstance(shorthand, property) else "")
        if nested is not hint:
            default = _default(f)
            docs.append(KeyDoc(key, type_label(hint), to_dict(default) if nested else default, help_text or ""))
        if nested is not None:
            docs.extend(key_docs(nested, key))
    return docs
