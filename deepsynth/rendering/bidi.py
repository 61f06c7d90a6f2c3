"""The Unicode bidirectional algorithm (UAX #9) for one line: levels, then visual order.

Raqm (FriBiDi) orders text within one font; a line whose characters come from several fonts is
drawn run by run, so the runs must be ordered here. This implements the implicit part of UAX #9
(rules P2-P3, W1-W7, N1-N2, I1-I2, L1-L2), which covers text without explicit directional
formatting characters; those (LRE, RLI, PDF, ...) are treated as neutrals, and bracket pairs
(N0) are resolved as ordinary neutrals.
"""

from __future__ import annotations

import unicodedata

_STRONG_R = frozenset({"R", "AL"})
_NEUTRAL = frozenset({"B", "S", "WS", "ON", "BN", "LRE", "LRO", "RLE", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})


def base_rtl(paragraph: str) -> bool:
    """P2-P3: a paragraph runs right to left when its first strong character is R or AL."""
    for ch in paragraph:
        kind = unicodedata.bidirectional(ch)
        if kind == "L":
            return False
        if kind in _STRONG_R:
            return True
    return False


def _weak(types: list[str], sos: str) -> None:
    """W1-W7, in place."""
    last_strong, prev = sos, sos
    for i, t in enumerate(types):
        if t == "NSM":  # W1
            t = types[i] = prev if prev not in _NEUTRAL else "ON"
        if t == "EN" and last_strong == "AL":  # W2
            types[i] = "AN"
        if t in ("L", "R", "AL"):
            last_strong = t
        prev = types[i]
    for i, t in enumerate(types):  # W3
        if t == "AL":
            types[i] = "R"
    for i in range(1, len(types) - 1):  # W4
        before, t, after = types[i - 1], types[i], types[i + 1]
        if t == "ES" and before == after == "EN" or t == "CS" and before == after and before in ("EN", "AN"):
            types[i] = before
    for i, t in enumerate(types):  # W5: European terminators next to European numbers
        if t == "EN":
            j = i - 1
            while j >= 0 and types[j] == "ET":
                types[j], j = "EN", j - 1
            j = i + 1
            while j < len(types) and types[j] == "ET":
                types[j], j = "EN", j + 1
    last_strong = sos
    for i, t in enumerate(types):
        if t in ("ES", "ET", "CS"):  # W6
            types[i] = "ON"
        elif t == "EN" and last_strong == "L":  # W7
            types[i] = "L"
        if t in ("L", "R"):
            last_strong = t


def _strength(t: str) -> str | None:
    """The direction a resolved type counts as for N1 (numbers count as R)."""
    return "L" if t == "L" else "R" if t in ("R", "EN", "AN") else None


def levels(line: str, rtl: bool) -> list[int]:
    """Embedding level of each character of ``line`` in a paragraph of base direction ``rtl``."""
    base = 1 if rtl else 0
    sos = "R" if rtl else "L"
    types = [unicodedata.bidirectional(ch) or "L" for ch in line]
    _weak(types, sos)
    i = 0
    while i < len(types):  # N1-N2: a run of neutrals takes its neighbours' direction, else the base one
        if types[i] not in _NEUTRAL:
            i += 1
            continue
        j = i
        while j < len(types) and types[j] in _NEUTRAL:
            j += 1
        before = _strength(types[i - 1]) if i else sos
        after = _strength(types[j]) if j < len(types) else sos
        fill = before if before == after else sos
        types[i:j] = [fill] * (j - i)
        i = j
    result = []
    for t in types:  # I1-I2
        if base == 0:
            result.append(1 if t == "R" else 2 if t in ("AN", "EN") else 0)
        else:
            result.append(2 if t in ("L", "EN", "AN") else 1)
    for k in range(len(line) - 1, -1, -1):  # L1: trailing whitespace takes the paragraph level
        if unicodedata.bidirectional(line[k]) not in ("WS", "S", "B", "BN"):
            break
        result[k] = base
    return result


def visual_order(run_levels: list[int]) -> list[int]:
    """L2: indices of runs (or characters) with these levels, in left-to-right display order."""
    order = list(range(len(run_levels)))
    if not run_levels:
        return order
    highest = max(run_levels)
    lowest_odd = min(level for level in run_levels if level % 2) if any(lv % 2 for lv in run_levels) else highest + 1
    for level in range(highest, lowest_odd - 1, -1):
        i = 0
        while i < len(order):
            if run_levels[order[i]] >= level:
                j = i
                while j < len(order) and run_levels[order[j]] >= level:
                    j += 1
                order[i:j] = order[i:j][::-1]
                i = j
            else:
                i += 1
    return order
