"""DeepSeek-OCR's resolution modes and the page size each one renders to."""

from __future__ import annotations

from dataclasses import dataclass

from deepsynth.errors import ConfigError


@dataclass(frozen=True)
class Mode:
    """One DeepSeek-OCR resolution mode.

    Attributes:
        name: Mode name as in DeepSeek-OCR (tiny, small, base, large, gundam).
        page_size: (width, height) in pixels of a rendered page.
        vision_tokens: Vision tokens DeepSeek-OCR produces for one page in this mode.
        tile_size: For gundam, the side of each local tile; None for single-view modes.
    """

    name: str
    page_size: tuple[int, int]
    vision_tokens: int
    tile_size: int | None = None


# Gundam pages are 1280x1920, i.e. exactly 2x3 tiles of 640 px (6 x 100 tokens) plus the
# 1024-px global view (256 tokens): upstream's tiling then needs no resampling.
MODES: dict[str, Mode] = {
    "tiny": Mode("tiny", (512, 512), 64),
    "small": Mode("small", (640, 640), 100),
    "base": Mode("base", (1024, 1024), 256),
    "large": Mode("large", (1280, 1280), 400),
    "gundam": Mode("gundam", (1280, 1920), 256 + 6 * 100, tile_size=640),
}

PAD_GRAY = (127, 127, 127)  # upstream pads images with this gray


def get_mode(name: str) -> Mode:
    """Return the :class:`Mode` called ``name`` or raise a ConfigError listing the known modes."""
    try:
        return MODES[name]
    except KeyError:
        raise ConfigError(f"unknown mode {name!r}; choose one of {', '.join(MODES)}") from None
