"""How a character is named in reports, logs and JSON: ``U+21D4`` (the Unicode convention), never a bare integer."""

from __future__ import annotations

from collections.abc import Iterable


def code_point(value: int | str) -> str:
    """``U+21D4`` for the integer 0x21D4 or the character "⇔"."""
    return f"U+{(ord(value) if isinstance(value, str) else value):04X}"


def code_points(values: Iterable[int | str]) -> list[str]:
    """:func:`code_point` of each value, sorted and without repeats."""
    numbers = {ord(v) if isinstance(v, str) else v for v in values}
    return [code_point(n) for n in sorted(numbers)]
