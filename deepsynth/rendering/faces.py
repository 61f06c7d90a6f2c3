"""A font at one size with its caches: word widths for layout and word masks for drawing."""

from __future__ import annotations

from typing import Any

from PIL import ImageFont

from deepsynth.rendering.layout import WidthCache

WORD_CACHE_SIZE = 50_000  # cached word masks per face (~1 KiB each)


class Face:
    """A font at one size, drawing in one direction, with memoised widths and masks.

    Args:
        font: The loaded font (basic layout for the fast path, Raqm for shaped text).
        direction: ``"ltr"`` or ``"rtl"`` for Raqm fonts; None for the basic layout.
        anchor: Pillow text anchor of the masks: None (left, ascender) or ``"ls"`` (left, baseline),
            used where several fonts share one baseline.
    """

    def __init__(self, font: ImageFont.FreeTypeFont, direction: str | None = None, anchor: str | None = None):
        self.font = font
        self.direction = direction
        self.anchor = anchor
        self.widths = WidthCache(self._measure)
        self.space = self.widths(" ")
        self._masks: dict[str, tuple[Any, int, int, int, int]] = {}

    def _measure(self, word: str) -> float:
        return self.font.getlength(word, direction=self.direction) if self.direction else self.font.getlength(word)

    def mask(self, word: str) -> tuple[Any, int, int, int, int]:
        """The word's anti-aliased coverage mask (a Pillow core image), its offset from the pen
        position and its size.

        Drawn once and reused: most words repeat, and pasting a cached mask is several times
        cheaper than laying the text out again.
        """
        cached = self._masks.get(word)
        if cached is None:
            core, (dx, dy) = self.font.getmask2(word, mode="L", direction=self.direction, anchor=self.anchor)
            if len(self._masks) >= WORD_CACHE_SIZE:
                self._masks.clear()
            cached = self._masks[word] = (core, dx, dy, *core.size)
        return cached
