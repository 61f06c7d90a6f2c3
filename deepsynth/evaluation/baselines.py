"""Extractive baseline: the first k sentences of the document (lead-k)."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (split after ``.``, ``!`` or ``?`` followed by whitespace)."""
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def lead_k(text: str, k: int = 3) -> str:
    """The first ``k`` sentences of ``text``, joined by spaces."""
    if k < 1:
        raise ValueError(f"lead_k: k must be >= 1, got {k}")
    return " ".join(split_sentences(text)[:k])
