"""Font selection (a fallback chain of real TrueType fonts) and glyph-coverage checks."""

from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont, features

from deepsynth.errors import ConfigError

BUILTIN = "builtin"  # Pillow's embedded font: ASCII only, used only when chosen explicitly
SYSTEM_DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
_ASCII = frozenset(range(0x20, 0x7F))
_INVISIBLE = frozenset({0x09, 0x0A, 0x0D, 0x20})  # whitespace is laid out, not drawn


@dataclass(frozen=True)
class FontChoice:
    """The font a renderer uses: a file path, or :data:`BUILTIN`."""

    path: str
    source: str  # "configured", "package", "system", "builtin", or "pip:…"/"apt:…" for a fallback font
    index: int = 0  # face number inside a font collection (.ttc)

    @property
    def name(self) -> str:
        if self.path == BUILTIN:
            return BUILTIN
        return Path(self.path).name + (f"#{self.index}" if self.index else "")


def _package_fonts() -> list[Path]:
    """Fonts shipped by pip dependencies: Noto Sans first, matplotlib's DejaVu Sans second."""
    found = []
    try:
        import fontpkg_noto_sans

        found.append(Path(fontpkg_noto_sans.ROOT) / "files" / "NotoSans[wdth,wght].ttf")
    except ImportError:
        pass
    try:
        import matplotlib

        found.append(Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf")
    except ImportError:
        pass
    return found


def resolve_font(configured: str | None = None) -> FontChoice:
    """Pick the font: configured path → a font shipped by a pip package → system DejaVu.

    Args:
        configured: A path to a .ttf/.otf file, ``"builtin"`` for Pillow's ASCII-only font,
            or None to use the first font of the fallback chain that exists.

    Raises:
        ConfigError: The configured path does not exist, or no font at all is available.
    """
    if configured == BUILTIN:
        return FontChoice(BUILTIN, "builtin")
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ConfigError(f"render.font: font file {configured!r} does not exist")
        return FontChoice(str(path.resolve()), "configured")
    for path in _package_fonts():
        if path.is_file():
            return FontChoice(str(path), "package")
    if SYSTEM_DEJAVU.is_file():
        return FontChoice(str(SYSTEM_DEJAVU), "system")
    raise ConfigError(
        "render.font: no TrueType font found (looked for fontpkg-noto-sans, matplotlib's DejaVu and "
        f"{SYSTEM_DEJAVU}); set render.font to a .ttf path or to 'builtin' for an ASCII-only font"
    )


@functools.lru_cache(maxsize=128)
def load_font(path: str, size: int, complex_script: bool = False, index: int = 0) -> ImageFont.FreeTypeFont:
    """Load (once per process) the font at ``path`` (face ``index`` of a collection) in pixel ``size``.

    ``complex_script`` selects Raqm shaping and bidi (Arabic, Indic, ...); otherwise the much
    faster basic layout is used, which draws Latin, Greek and Cyrillic text identically.
    """
    if complex_script and not features.check("raqm"):
        raise RuntimeError(
            "Pillow was built without libraqm: complex scripts cannot be shaped (pip install a Pillow wheel)"
        )
    engine = ImageFont.Layout.RAQM if complex_script else ImageFont.Layout.BASIC
    if path == BUILTIN:
        builtin = ImageFont.load_default(size=size)  # always the basic layout: reload its bytes for Raqm
        return (
            ImageFont.truetype(io.BytesIO(builtin.font_bytes), size=size, layout_engine=engine)
            if complex_script
            else builtin
        )
    return ImageFont.truetype(path, size=size, index=index, layout_engine=engine)


@functools.lru_cache(maxsize=64)
def coverage(path: str, index: int = 0) -> frozenset[int]:
    """Code points the font at ``path`` (face ``index``) has glyphs for (from its cmap table)."""
    if path == BUILTIN:
        return _ASCII
    from deepsynth.rendering.cmap import code_points

    return code_points(path, index)


def uncovered(text: str, have: frozenset[int] | set[int]) -> list[int]:
    """Sorted code points of ``text`` (whitespace aside) outside ``have``."""
    return sorted({cp for cp in map(ord, set(text)) if cp not in have and cp not in _INVISIBLE})


def font_fingerprint(choice: FontChoice) -> str:
    """A stable identity of the font file (name, face, size in bytes) for cache keys."""
    if choice.path == BUILTIN:
        return BUILTIN
    return f"{choice.name}:{os.path.getsize(choice.path)}"
