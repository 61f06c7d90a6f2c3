"""Line wrapping by measured pixel width, and pagination."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from deepsynth.rendering.segment import breaks_inside

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Line:
    """A laid-out line, the offset in the source text just past its last character, and whether
    its paragraph runs right to left."""

    text: str
    end: int
    rtl: bool = False


class Script(Protocol):
    """Break opportunities and direction of paragraphs beyond plain space-separated LTR text."""

    def units(self, paragraph: str) -> Iterable[tuple[int, int, bool]]:
        """``(start, end, glued)`` layout units; glued units follow the previous one without a space."""

    def rtl(self, paragraph: str) -> bool:
        """Whether the paragraph's base direction is right to left."""


class WidthCache:
    """Memoised pixel widths of words for one font: most words repeat, so layout gets cheap."""

    def __init__(self, measure: Callable[[str], float]):
        self._measure = measure
        self._widths: dict[str, float] = {}

    def __call__(self, word: str) -> float:
        width = self._widths.get(word)
        if width is None:
            width = self._widths[word] = self._measure(word)
        return width


def _split_long_word(word: str, start: int, width: WidthCache, max_width: float) -> Iterator[Line]:
    """Break a word wider than the line into pieces that fit (a long URL, a CJK run), lazily."""
    current, offset = "", start
    for i, ch in enumerate(word):
        if current and breaks_inside(current[-1], ch) and width(current + ch) > max_width:
            yield Line(current, offset + i)
            current = ""
        current += ch
    yield Line(current, offset + len(word))


def _spaced_words(paragraph: str) -> Iterable[tuple[int, int, bool]]:
    return ((match.start(), match.end(), False) for match in _WORD.finditer(paragraph))


def _paragraphs(text: str) -> Iterator[str]:
    """``text.split("\\n")``, one paragraph at a time (a huge text is not copied whole)."""
    start = 0
    while (end := text.find("\n", start)) >= 0:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def iter_lines(text: str, width: WidthCache, max_width: float, script: Script | None = None) -> Iterator[Line]:
    """The lines of :func:`wrap`, laid out only as far as they are consumed (trailing blank lines included)."""
    space = width(" ")
    offset = 0
    for paragraph in _paragraphs(text):
        current: list[str] = []
        current_width = 0.0
        end = offset
        rtl = script.rtl(paragraph) if script else False
        for start, stop, glued in script.units(paragraph) if script else _spaced_words(paragraph):
            word = paragraph[start:stop]
            w = width(word)
            word_end = offset + stop
            gap = 0.0 if glued else space
            if current and current_width + gap + w <= max_width:
                if glued:
                    current[-1] += word
                else:
                    current.append(word)
                current_width += gap + w
                end = word_end
                continue
            if current:
                yield Line(" ".join(current), end, rtl)
                current, current_width = [], 0.0
            if w > max_width:
                pieces = _split_long_word(word, offset + start, width, max_width)
                last = next(pieces)
                for piece in pieces:
                    yield Line(last.text, last.end, rtl)
                    last = piece
                current, current_width, end = [last.text], width(last.text), last.end
            else:
                current, current_width, end = [word], w, word_end
        yield Line(" ".join(current), end if current else offset + len(paragraph), rtl)
        offset += len(paragraph) + 1


def wrap(text: str, width: WidthCache, max_width: float, script: Script | None = None) -> list[Line]:
    """Greedy word wrap of ``text`` into lines no wider than ``max_width`` pixels.

    Newlines end paragraphs; runs of spaces collapse to one. Every line records where it ends
    in ``text`` so that a truncated rendering can say how many characters it drew. Without a
    ``script``, words are separated by spaces and run left to right; with one, its units (CJK
    characters, Thai phrases, ...) are the break opportunities and each paragraph has its direction.
    """
    return wrap_at_most(text, width, max_width, script, None)[0]


def wrap_at_most(
    text: str, width: WidthCache, max_width: float, script: Script | None, max_lines: int | None
) -> tuple[list[Line], bool]:
    """:func:`wrap`, stopping after ``max_lines`` lines: a document far longer than its pages costs
    no more to lay out than its pages.

    Returns:
        The lines, and whether text with content was left out after them.
    """
    lines: list[Line] = []
    for line in iter_lines(text, width, max_width, script):
        if max_lines is not None and len(lines) >= max_lines:
            if line.text:
                return lines, True
            continue  # blank lines past the budget only matter if content follows them
        lines.append(line)
    # Trailing blank lines carry no content.
    while len(lines) > 1 and not lines[-1].text:
        lines.pop()
    return lines, False


def paginate(lines: list[Line], first_page_lines: int, lines_per_page: int) -> list[list[Line]]:
    """Split lines into pages; the first page may hold fewer lines (it carries the instruction)."""
    if first_page_lines <= 0 or lines_per_page <= 0:
        raise ValueError("a page must hold at least one line: lower font_size or margin")
    pages = [lines[:first_page_lines]]
    rest = lines[first_page_lines:]
    pages.extend(rest[i : i + lines_per_page] for i in range(0, len(rest), lines_per_page))
    return pages
