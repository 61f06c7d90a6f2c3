"""Lines beyond plain Latin text: per-character font fallback, Raqm shaping and bidi order.

A line is cut at its spaces into words, each word into runs of one font and one embedding
level; the runs are put in visual order (UAX #9, :mod:`deepsynth.rendering.bidi`) and each is
shaped and drawn by Raqm (HarfBuzz) in its direction, all on the primary font's baseline. Spaces
are gaps of the primary font's space width, so a line is exactly as wide as layout measured it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

import deepsynth.rendering.bidi as bidi
import deepsynth.rendering.fonts as fonts
import deepsynth.rendering.segment as segment
from deepsynth.rendering.chain import FontChain
from deepsynth.rendering.faces import Face
from deepsynth.rendering.layout import WidthCache

INK = 0
# Code points the basic layout draws as well as Raqm: everything below Hebrew, and from Latin
# Extended Additional on, except right-to-left characters and combining marks.
COMPLEX_BLOCKS = range(0x0590, 0x1E00)
_NOT_PLAIN = frozenset({"R", "AL", "AN", "NSM", "LRE", "LRO", "RLE", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})


def plain(cp: int) -> bool:
    """Whether code point ``cp`` needs neither shaping nor bidi when the primary font has it."""
    if cp < COMPLEX_BLOCKS.start:
        return True
    return cp not in COMPLEX_BLOCKS and unicodedata.bidirectional(chr(cp)) not in _NOT_PLAIN


def _keeps_font(ch: str) -> bool:
    """Spaces, punctuation, digits, symbols and marks stay in the font of the run they are in."""
    return unicodedata.category(ch)[0] in "ZPNSM" or ch in "\u200c\u200d"


class Shaper:
    """Measures and draws complex lines for one font chain at one pixel size."""

    def __init__(self, chain: FontChain, size: int, fast: Face):
        self.chain = chain
        self.size = size
        self.fast = fast
        self.space = fast.space
        self.ascent = fast.font.getmetrics()[0]
        self.widths = WidthCache(self._measure)
        primary = fonts.coverage(chain.primary.path, chain.primary.index)
        self.simple_chars = frozenset(chr(cp) for cp in primary if plain(cp)) | {" ", "\n", "\t", "\r"}
        self._faces: dict[tuple[int, bool], Face] = {}

    def is_simple(self, text: str) -> bool:
        """True when the basic layout in the primary font draws ``text`` exactly (no fallback, no shaping)."""
        return self.simple_chars.issuperset(text)

    # The layout side: paragraph direction and break units (see layout.Script).
    rtl = staticmethod(bidi.base_rtl)
    units = staticmethod(segment.units)

    def face(self, position: int, rtl: bool) -> Face:
        """The Raqm face of the chain's font at ``position``, drawing in one direction."""
        key = (position, rtl)
        if key not in self._faces:
            choice = self.chain.fonts[position]
            font = fonts.load_font(choice.path, self.size, True, choice.index)
            self._faces[key] = Face(font, "rtl" if rtl else "ltr", anchor="ls")
        return self._faces[key]

    def runs(self, text: str, levels: list[int]) -> Iterable[tuple[str, int, int]]:
        """``(text, font position, level)`` runs of a word: one font, one level each."""
        start, current, level = 0, None, None
        for i, ch in enumerate(text):
            cp = ord(ch)
            if current is not None and _keeps_font(ch) and self.chain.covers(current, cp):
                position = current
            else:
                position = self.chain.font_index(cp)
                if position is None:  # no font has it: reported as a missing glyph, drawn as the font's box
                    position = current if current is not None else 0
            if (position, levels[i]) != (current, level):
                if current is not None:
                    yield text[start:i], current, level
                start, current, level = i, position, levels[i]
        if current is not None:
            yield text[start:], current, level

    def _measure(self, word: str) -> float:
        """Width of a word as drawn: plain words by the fast face, others run by run."""
        if self.is_simple(word):
            return self.fast.widths(word)
        levels = bidi.levels(word, bidi.base_rtl(word))
        return sum(self.face(pos, level % 2 == 1).widths(run) for run, pos, level in self.runs(word, levels))

    def pieces(self, line: str, rtl: bool) -> list[tuple[str, int, int, float]]:
        """The line's runs and spaces ``(text, font position or -1 for a space, level, width)`` in visual order."""
        levels = bidi.levels(line, rtl)
        pieces, start = [], 0
        for word in line.split(" "):
            for run, pos, level in self.runs(word, levels[start : start + len(word)]):
                pieces.append((run, pos, level, self.face(pos, level % 2 == 1).widths(run)))
            start += len(word)
            if start < len(line):
                pieces.append((" ", -1, levels[start], self.space))
                start += 1
        return [pieces[i] for i in bidi.visual_order([p[2] for p in pieces])]

    def draw(self, canvas: Any, line: str, rtl: bool, left: int, right: int, top: int) -> None:
        """Draw ``line`` on the core image ``canvas``: from ``left``, or ending at ``right`` when ``rtl``."""
        pieces = self.pieces(line, rtl)
        x = right - sum(p[3] for p in pieces) if rtl else float(left)
        baseline = top + self.ascent
        for run, pos, level, width in pieces:
            if pos >= 0:
                mask, dx, dy, w, h = self.face(pos, level % 2 == 1).mask(run)
                x0, y0 = int(round(x)) + dx, baseline + dy
                canvas.paste(INK, (x0, y0, x0 + w, y0 + h), mask)
            x += width
