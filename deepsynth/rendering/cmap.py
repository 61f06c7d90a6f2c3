"""The code points a font has glyphs for, read straight from its ``cmap`` table.

fontTools' ``getBestCmap`` maps every code point to a glyph *name*, which for a CJK font means
building 65,000 names (and parsing its CFF charset) per face: tens of MiB of peak memory in every
rendering process. Coverage needs only the code points, so the Unicode subtable (format 12, or
format 4 for the Basic Multilingual Plane) is decoded here directly; other layouts fall back to
fontTools.
"""

from __future__ import annotations

import struct

from fontTools.ttLib import TTFont

# (platform, encoding) of Unicode subtables, full repertoire first.
_PREFERRED = [(3, 10), (0, 6), (0, 4), (3, 1), (0, 3), (0, 2), (0, 1), (0, 0)]


def _format4(data: bytes, at: int) -> set[int]:
    seg_count = struct.unpack_from(">H", data, at + 6)[0] // 2
    ends = struct.unpack_from(f">{seg_count}H", data, at + 14)
    starts_at = at + 16 + 2 * seg_count
    starts = struct.unpack_from(f">{seg_count}H", data, starts_at)
    deltas = struct.unpack_from(f">{seg_count}h", data, starts_at + 2 * seg_count)
    offsets_at = starts_at + 4 * seg_count
    offsets = struct.unpack_from(f">{seg_count}H", data, offsets_at)
    found: set[int] = set()
    for i, (start, end, delta, offset) in enumerate(zip(starts, ends, deltas, offsets)):
        for cp in range(start, min(end, 0xFFFE) + 1):
            if offset == 0:
                glyph = (cp + delta) & 0xFFFF
            else:
                glyph = struct.unpack_from(">H", data, offsets_at + 2 * i + offset + 2 * (cp - start))[0]
                glyph = (glyph + delta) & 0xFFFF if glyph else 0
            if glyph:
                found.add(cp)
    return found


def _format12(data: bytes, at: int) -> set[int]:
    (groups,) = struct.unpack_from(">I", data, at + 12)
    found: set[int] = set()
    for k in range(groups):
        start, end, glyph = struct.unpack_from(">III", data, at + 16 + 12 * k)
        found.update(range(start + (glyph == 0), end + 1))
    return found


def code_points(path: str, index: int = 0) -> frozenset[int]:
    """Code points with a glyph in face ``index`` of the font file at ``path``."""
    with TTFont(path, lazy=True, fontNumber=index) as font:
        data = font.reader["cmap"]
        count = struct.unpack_from(">H", data, 2)[0]
        subtables = {}
        for k in range(count):
            platform, encoding, offset = struct.unpack_from(">HHI", data, 4 + 8 * k)
            subtables.setdefault((platform, encoding), offset)
        for key in _PREFERRED:
            if key in subtables:
                at = subtables[key]
                kind = struct.unpack_from(">H", data, at)[0]
                if kind == 12:
                    return frozenset(_format12(data, at))
                if kind == 4:
                    return frozenset(_format4(data, at))
        return frozenset(font.getBestCmap() or {})
