"""Row-level rules: each returns the problems of one document or one rendered page.

A :class:`Problem` names the offending field and a human-readable reason; any problem
sends the whole document (every mode it was rendered in) to quarantine.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import sys
import unicodedata
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from deepsynth.rendering.modes import MODES


@dataclass(frozen=True)
class Problem:
    """Why a row is quarantined."""

    rule: str  # stable rule name, e.g. "empty_text", "leakage", "page_decode"
    field: str
    reason: str
    mode: str | None = None  # the rendering it concerns; None for document-level problems


def expected_page_size(mode: str) -> tuple[int, int] | None:
    """(width, height) a page of ``mode`` must have, or None for an unknown mode."""
    spec = MODES.get(mode)
    return tuple(spec.page_size) if spec else None


_SPACE = re.compile(r"\s+")


@functools.lru_cache(maxsize=1)
def _punctuation_to_space() -> dict[int, str]:
    """``str.translate`` table: every punctuation code point (category P*) to a space."""
    return {cp: " " for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)).startswith("P")}


def normalize_text(text: str) -> str:
    """Casefold, drop punctuation and collapse whitespace, for near-duplicate (leakage) detection."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.translate(_punctuation_to_space())
    return _SPACE.sub(" ", text).strip()


def _normalized_words(text: str, chunk: int) -> Iterator[str]:
    """The words of :func:`normalize_text` (``text``), a piece of about ``chunk`` characters at a time.

    Pieces end just after a whitespace character: normalization, case folding and punctuation
    never join characters across one, so the words are those of the whole text.
    """
    start = 0
    while start < len(text):
        end = len(text)
        if end - start > chunk:
            space = _SPACE.search(text, start + chunk)
            end = space.end() if space else end
        piece = unicodedata.normalize("NFKC", text[start:end]).casefold().translate(_punctuation_to_space())
        yield from piece.split()
        start = end


def normalized_digest(text: str, chunk: int = 1 << 20) -> str:
    """``text_digest(normalize_text(text))``, without building the normalized text (a 200 MB one took GBs)."""
    digest = hashlib.blake2b(digest_size=16)
    for i, word in enumerate(_normalized_words(text, chunk)):
        digest.update((" " + word if i else word).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def text_digest(text: str) -> str:
    """Short stable digest of a text (documents are compared by digest, not kept in memory)."""
    digest = hashlib.blake2b(digest_size=16)
    for start in range(0, len(text), 1 << 20):  # a slice at a time: a huge text is not encoded whole
        digest.update(text[start : start + (1 << 20)].encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def stripped_len(value: str | None) -> int:
    """Length of ``value`` without surrounding whitespace (0 for None)."""
    return len(value.strip()) if value else 0


def summary_ratio(text: str | None, summary: str | None) -> float | None:
    """Summary length over text length (stripped characters); None where either is empty."""
    t, s = stripped_len(text), stripped_len(summary)
    return s / t if t and s else None


def check_document(doc_id: str | None, text: str | None, summary: str | None, max_ratio: float) -> list[Problem]:
    """Problems of a document's own fields: empty id, text or summary, summary too long."""
    problems = []
    if not doc_id or not str(doc_id).strip():
        problems.append(Problem("empty_id", "id", "empty id"))
    if stripped_len(text) == 0:
        problems.append(Problem("empty_text", "text", "empty or whitespace-only text"))
    if stripped_len(summary) == 0:
        problems.append(Problem("empty_summary", "summary", "empty or missing summary"))
    ratio = summary_ratio(text, summary)
    if ratio is not None and ratio > max_ratio:
        problems.append(
            Problem(
                "summary_ratio",
                "summary",
                f"summary not shorter than text by the configured ratio: {stripped_len(summary)}/"
                f"{stripped_len(text)} chars = {ratio:.2f} > {max_ratio:.2f}",
            )
        )
    return problems


def check_rendering(
    mode: str, pages: list[bytes] | None, page_width: int | None, page_height: int | None, max_pixels: int | None
) -> list[Problem]:
    """Problems of one rendering: unknown mode, no pages, recorded or decoded size, undecodable page.

    Only the first bad page is reported: one reason is enough to quarantine the document.
    """
    expected = expected_page_size(mode)
    if expected is None:
        return [Problem("unknown_mode", "mode", f"unknown mode {mode!r} (known: {', '.join(MODES)})", mode)]
    if not pages:
        return [Problem("no_pages", "pages", f"no pages rendered in mode {mode!r}", mode)]
    if (page_width, page_height) != expected:
        return [
            Problem(
                "page_size",
                "page_width",
                f"recorded page size {page_width}x{page_height}, mode {mode!r} expects {expected[0]}x{expected[1]}",
                mode,
            )
        ]
    for number, png in enumerate(pages, start=1):
        found = check_page(png, expected, max_pixels)
        if found:
            rule, reason = found
            return [Problem(rule, "pages", f"page {number} ({mode}): {reason}", mode)]
    return []


def check_page(png: bytes | None, expected: tuple[int, int], max_pixels: int | None = None) -> tuple[str, str] | None:
    """Why one page's bytes are unusable, or None if they decode to an image of ``expected`` size.

    Returns:
        None, or ``(rule, reason)`` with rule ``page_size`` or ``page_decode``.

    The size is read from the header and checked before any pixel is decoded, so an image
    claiming a huge size (a decompression bomb) is rejected without allocating it.
    """
    if not png:
        return "page_decode", "empty image bytes"
    limit = max_pixels if max_pixels is not None else Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(png)) as img:
                width, height = img.size
                if limit and width * height > limit:
                    return "page_decode", (
                        f"{width}x{height} = {width * height} pixels exceeds the limit of {limit} "
                        "(decompression bomb guard)"
                    )
                if (width, height) != expected:
                    return "page_size", f"image is {width}x{height}, expected {expected[0]}x{expected[1]}"
                img.verify()  # checksums of every chunk
            with Image.open(io.BytesIO(png)) as img:
                img.load()  # full decode: catches truncated data that verify() may miss
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return "page_decode", f"decompression bomb guard: {exc}"
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for broken files
        return "page_decode", f"does not decode as an image ({type(exc).__name__}: {exc})"
    return None
