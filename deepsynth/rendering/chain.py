"""The font chain: the primary font, then fallback fonts tried character by character.

A character is drawn with the first font in the chain that has a glyph for it; a character no
font has is reported (code point) by :meth:`FontChain.missing_glyphs`, never drawn as a box
silently. Fallback fonts named in ``render.fallback_fonts`` that are not installed are left out
of the chain and listed in :attr:`FontChain.unavailable` (with the package that provides them).
"""

from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

import deepsynth.rendering.fonts as fonts
from deepsynth.errors import ConfigError
from deepsynth.rendering.font_table import KNOWN_FONTS, KnownFont, is_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FontChain:
    """Fonts in fallback order (``fonts[0]`` is the primary font) and the named ones not installed."""

    fonts: tuple[fonts.FontChoice, ...]
    unavailable: tuple[str, ...] = ()

    @property
    def primary(self) -> fonts.FontChoice:
        return self.fonts[0]

    def font_index(self, cp: int) -> int | None:
        """Position in the chain of the first font that can draw code point ``cp``, or None."""
        return _lookup(self).index(cp)

    def covers(self, position: int, cp: int) -> bool:
        """Whether the font at ``position`` in the chain can draw code point ``cp``."""
        return cp in _lookup(self).coverages[position]

    def covered(self) -> frozenset[int]:
        """Every code point some font in the chain can draw."""
        return _lookup(self).union

    def missing_glyphs(self, text: str) -> list[int]:
        """Sorted code points of ``text`` (whitespace aside) that no font in the chain can draw."""
        return fonts.uncovered(text, self.covered())

    def fingerprint(self) -> str:
        """Identity of every font file in order, for settings fingerprints and cache keys."""
        return "|".join(fonts.font_fingerprint(choice) for choice in self.fonts)

    def describe(self) -> list[dict[str, object]]:
        """The chain as manifest entries: name, path, face index and where each font came from."""
        return [{"name": c.name, "path": c.path, "index": c.index, "source": c.source} for c in self.fonts]


class _Lookup:
    """Per-process coverage tables of a chain, with a memo of code point → font position."""

    def __init__(self, chain: FontChain):
        self.coverages = [fonts.coverage(c.path, c.index) for c in chain.fonts]
        self.union = frozenset().union(*self.coverages)
        self._memo: dict[int, int | None] = {}

    def index(self, cp: int) -> int | None:
        found = self._memo.get(cp, -1)
        if found == -1:
            found = self._memo[cp] = next((i for i, have in enumerate(self.coverages) if cp in have), None)
        return found


@functools.lru_cache(maxsize=8)
def _lookup(chain: FontChain) -> _Lookup:
    return _Lookup(chain)


def _locate(known: KnownFont) -> Path | None:
    """The installed file of a known font, or None when its package is not installed."""
    if known.module is None:
        path = Path(known.file)
        return path if path.is_file() else None
    try:
        package = importlib.import_module(known.module)
    except ImportError:
        return None
    path = Path(package.ROOT) / "files" / known.file
    return path if path.is_file() else None


def _from_path(entry: str) -> fonts.FontChoice:
    """A ``path.ttf`` or ``path.ttc#index`` entry of ``render.fallback_fonts``."""
    file, _, index = entry.partition("#")
    path = Path(file).expanduser()
    if not path.is_file():
        raise ConfigError(f"render.fallback_fonts: font file {file!r} does not exist")
    if index and not index.isdigit():
        raise ConfigError(f"render.fallback_fonts: {entry!r}: the face index after '#' must be a number")
    return fonts.FontChoice(str(path.resolve()), "configured", int(index or 0))


def resolve_chain(font: str | None, fallback: list[str]) -> FontChain:
    """The chain for ``render.font`` and ``render.fallback_fonts``.

    Raises:
        ConfigError: The primary font or a fallback font given by path does not exist.
    """
    chain = [fonts.resolve_font(font)]
    unavailable = []
    for entry in fallback:
        if is_path(entry):
            choice = _from_path(entry)
        else:
            known = KNOWN_FONTS[entry]
            path = _locate(known)
            if path is None:
                unavailable.append(f"{entry} ({known.package})")
                continue
            choice = fonts.FontChoice(str(path), known.package, known.index)
        if all((c.path, c.index) != (choice.path, choice.index) for c in chain):
            chain.append(choice)
    if unavailable:
        log.warning(
            "fallback fonts not installed (their scripts will be reported as missing glyphs; "
            "`make install` installs them): %s",
            ", ".join(unavailable),
        )
    return FontChain(tuple(chain), tuple(unavailable))
