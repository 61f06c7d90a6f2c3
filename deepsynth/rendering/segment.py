"""Where a line may break in text whose scripts do not separate words with spaces.

Space-separated words stay the units of layout. Inside a word, Chinese and Japanese break
between any two characters (closing punctuation and small kana stay with the character before,
opening punctuation with the one after); Thai breaks between the phrases that BudouX's Thai
model finds (Thai writes no spaces between words); Lao, Khmer and Myanmar break between
syllable clusters (no segmenter for them is used). Korean separates words with spaces.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator

_CJK = (
    "\u2e80-\u2fff\u3000-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\U00020000-\U0003ffff"
)
_THAI = "\u0e00-\u0e7f"
_CLUSTERED = "\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff"  # Lao, Myanmar, Khmer
_NEEDS_SPLIT = re.compile(f"[{_CJK}{_THAI}{_CLUSTERED}]")
_UNITS = re.compile(
    f"(?P<cjk>[{_CJK}])|(?P<thai>[{_THAI}]+)|(?P<clustered>[{_CLUSTERED}]+)|[^{_CJK}{_THAI}{_CLUSTERED}]+"
)
_WORD = re.compile(r"\S+")
NO_LINE_START = frozenset(
    "、。，．,.:;?!)]}）」』】〕〉》〗〙〛ー・：；？！ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々ゝゞヽヾ"
)
NO_LINE_END = frozenset("([{（「『【〔〈《〖〘〚")
_JOINERS = frozenset("\u200c\u200d\u17d2\u1039")  # ZWNJ, ZWJ, Khmer coeng, Myanmar virama


def breaks_inside(prev: str, ch: str) -> bool:
    """False where breaking between ``prev`` and ``ch`` would split a character cluster
    (before a combining mark, around a joiner, after a virama)."""
    return (ch.isascii() and prev.isascii()) or not (
        unicodedata.category(ch).startswith("M")
        or prev in _JOINERS
        or ch in _JOINERS
        or unicodedata.combining(prev) == 9
    )  # after a virama


@functools.lru_cache(maxsize=1)
def _thai_parser():
    import budoux

    return budoux.load_default_thai_parser()


def _clusters(run: str) -> list[str]:
    pieces = [run[0]]
    for prev, ch in zip(run, run[1:]):
        if breaks_inside(prev, ch):
            pieces.append(ch)
        else:
            pieces[-1] += ch
    return pieces


def _pieces(word: str) -> list[str]:
    """``word`` cut at its break opportunities (kinsoku rules applied)."""
    pieces: list[str] = []
    glue_next = False
    for match in _UNITS.finditer(word):
        kind = match.lastgroup
        run = match.group()
        found = _thai_parser().parse(run) if kind == "thai" else _clusters(run) if kind == "clustered" else [run]
        for piece in found:
            if pieces and (glue_next or piece[0] in NO_LINE_START or not breaks_inside(pieces[-1][-1], piece[0])):
                pieces[-1] += piece
            else:
                pieces.append(piece)
            glue_next = piece[-1] in NO_LINE_END
    return pieces


def units(paragraph: str) -> Iterator[tuple[int, int, bool]]:
    """Layout units of ``paragraph``: ``(start, end, glued)``, glued meaning no space before it."""
    for match in _WORD.finditer(paragraph):
        word, start = match.group(), match.start()
        if not _NEEDS_SPLIT.search(word):
            yield start, match.end(), False
            continue
        for i, piece in enumerate(_pieces(word)):
            yield start, start + len(piece), i > 0
            start += len(piece)
