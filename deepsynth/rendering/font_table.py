"""The fallback fonts the renderer knows by name, where each comes from, and the default chain.

Plain data (no font loading): ``config.py`` checks ``render.fallback_fonts`` against it and
``chain.py`` turns names into font files. Every font comes from a package: PyPI ``fontpkg-*``
packages (installed with the project) or Debian packages (installed by ``make install`` and the
images): ``fonts-noto-cjk`` for Chinese, Japanese and Korean, ``fonts-noto-core`` for Hebrew, the
Indic scripts PyPI lacks, symbols and math.
"""

from __future__ import annotations

from dataclasses import dataclass

NOTO_CORE = "/usr/share/fonts/truetype/noto"
NOTO_CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


@dataclass(frozen=True)
class KnownFont:
    """A fallback font by name.

    Attributes:
        name: The name used in ``render.fallback_fonts``.
        scripts: What it is in the chain for.
        package: Where it comes from: ``pip:<distribution>`` or ``apt:<Debian package>``.
        file: For pip, the file inside the package's ``files/`` folder; for apt, an absolute path.
        index: Face number inside a font collection (.ttc).
    """

    name: str
    scripts: str
    package: str
    file: str
    index: int = 0

    @property
    def module(self) -> str | None:
        """The import name of a pip font package (``fontpkg_noto_sans_arabic``), or None."""
        kind, _, dist = self.package.partition(":")
        return dist.replace("-", "_") if kind == "pip" else None


def _pip(script: str, scripts: str) -> KnownFont:
    stem = "".join(part.capitalize() for part in script.split("-"))
    return KnownFont(
        f"noto-sans-{script}", scripts, f"pip:fontpkg-noto-sans-{script}", f"NotoSans{stem}[wdth,wght].ttf"
    )


def _core(script: str, scripts: str) -> KnownFont:
    stem = "".join(part.capitalize() for part in script.split("-"))
    return KnownFont(f"noto-sans-{script}", scripts, "apt:fonts-noto-core", f"{NOTO_CORE}/NotoSans{stem}-Regular.ttf")


def _cjk(region: str, index: int, scripts: str) -> KnownFont:
    return KnownFont(f"noto-sans-cjk-{region}", scripts, "apt:fonts-noto-cjk", NOTO_CJK, index)


KNOWN_FONTS: dict[str, KnownFont] = {
    font.name: font
    for font in [
        _pip("arabic", "Arabic, Persian, Urdu"),
        _core("hebrew", "Hebrew, Yiddish"),
        _pip("devanagari", "Hindi, Marathi, Nepali, Sanskrit"),
        _core("bengali", "Bengali, Assamese"),
        _core("gurmukhi", "Punjabi"),
        _core("gujarati", "Gujarati"),
        _core("oriya", "Odia"),
        _pip("tamil", "Tamil"),
        _pip("telugu", "Telugu"),
        _core("kannada", "Kannada"),
        _core("malayalam", "Malayalam"),
        _core("sinhala", "Sinhala"),
        _pip("thai", "Thai"),
        _pip("khmer", "Khmer"),
        # One collection, one face per region: every face covers all CJK characters; the first one in
        # the chain decides the regional glyph shapes (put noto-sans-cjk-jp first for Japanese corpora).
        _cjk("sc", 2, "Chinese (Simplified)"),
        _cjk("tc", 3, "Chinese (Traditional)"),
        _cjk("jp", 0, "Japanese"),
        _cjk("kr", 1, "Korean"),
        _core("math", "mathematical operators and alphanumerics"),
        _core("symbols", "symbols"),
        _core("symbols2", "more symbols, arrows, shapes"),
        KnownFont("dejavu-sans", "last resort: box drawing, misc symbols", "apt:fonts-dejavu-core", DEJAVU),
    ]
}

#: ``render.fallback_fonts`` by default: every known font, in the order above.
DEFAULT_FALLBACK: list[str] = list(KNOWN_FONTS)


def is_path(entry: str) -> bool:
    """True when a ``fallback_fonts`` entry is a font file (``path.ttf`` or ``path.ttc#2``) rather than a name."""
    return "/" in entry or entry.split("#")[0].lower().endswith((".ttf", ".otf", ".ttc"))


def check_entries(entries: list[str]) -> None:
    """Raise ValueError for an entry that is neither a known name nor a font path."""
    for entry in entries:
        if not is_path(entry) and entry not in KNOWN_FONTS:
            raise ValueError(
                f"render.fallback_fonts: unknown font {entry!r}; give a .ttf/.otf/.ttc path or one of "
                + ", ".join(KNOWN_FONTS)
            )
