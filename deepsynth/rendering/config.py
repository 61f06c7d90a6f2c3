"""The ``render`` section: how documents become page images."""

from __future__ import annotations

from dataclasses import dataclass

from deepsynth.configuration import Section, knob
from deepsynth.rendering.font_table import DEFAULT_FALLBACK, check_entries
from deepsynth.rendering.modes import get_mode


@dataclass
class RenderSettings(Section):
    """How documents become page images (the ``render`` section of a config)."""

    _section = "render"

    modes: list[str] = knob(["base"], "DeepSeek-OCR modes to render each document in: tiny, small, base, large, gundam")
    font: str | None = knob(
        None, "TrueType font path; null = Noto Sans (pip) → DejaVu; 'builtin' = Pillow's ASCII-only font"
    )
    fallback_fonts: list[str] = knob(
        DEFAULT_FALLBACK,
        "Fonts tried per character after `font` (names from rendering/font_table.py or .ttf/.ttc#index paths): "
        "Arabic, Hebrew, Indic, Thai, Khmer, CJK (SC, TC, JP, KR), math, symbols; [] = `font` only",
    )
    font_size: int | None = knob(None, "Font size in px; null = page width / 48 (21 px in base mode)")
    margin: int | None = knob(None, "Page margin in px; null = page width / 32")
    line_spacing: float = knob(1.25, "Line height as a multiple of the font size")
    max_pages: int | None = knob(4, "Pages per document before the rest is truncated (recorded); null = no limit")
    draw_instruction: bool = knob(False, "Also draw the instruction prompt at the top of the first page")
    workers: int = knob(0, "Rendering processes; 0 = one per CPU core")
    png_compress_level: int = knob(1, "PNG zlib level 0-9: lossless at every level; 1 is fast and small for text")
    rows_per_shard: int = knob(64, "Rows per Parquet shard of the rendered dataset")
    page_cache: bool = knob(
        True, "Reuse pages rendered by earlier runs (keyed by text + settings) from <home>/render-cache"
    )

    def __post_init__(self) -> None:
        for name in self.modes:
            get_mode(name)
        check_entries(self.fallback_fonts)
        if not self.modes:
            raise ValueError("render.modes: give at least one mode")
        if self.max_pages is not None and self.max_pages < 1:
            raise ValueError("render.max_pages: must be >= 1 or null")
        if not 0 <= self.png_compress_level <= 9:
            raise ValueError("render.png_compress_level: must be within 0-9")
