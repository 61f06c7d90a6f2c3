"""The original DeepSynth ``TextToImageConverter`` behaviour, kept only as a benchmark baseline.

It wraps at a fixed 100 characters with :mod:`textwrap`, draws with Pillow's default font on an
RGB canvas and saves PNG at Pillow's default compression, one document at a time. (Its
character-count wrapping is one of the reasons the project renders differently.)
"""

from __future__ import annotations

import io
import textwrap

from PIL import Image, ImageDraw, ImageFont


class LegacyTextToImageConverter:
    """Baseline converter: one page per document, clipped at the bottom like the original."""

    def __init__(
        self, width: int = 1024, height: int = 1024, margin: int = 32, font_size: int = 18, chars_per_line: int = 100
    ):
        self.width, self.height, self.margin = width, height, margin
        self.font = ImageFont.load_default(size=font_size)
        self.line_height = font_size + 4
        self.chars_per_line = chars_per_line

    def convert(self, text: str) -> Image.Image:
        lines: list[str] = []
        for paragraph in text.split("\n"):
            lines.extend(textwrap.wrap(paragraph, width=self.chars_per_line) if paragraph.strip() else [""])
        image = Image.new("RGB", (self.width, self.height), (255, 255, 255))
        draw = ImageDraw.Draw(image)
        y = self.margin
        for line in lines:
            if y + self.line_height > self.height - self.margin:
                break
            draw.text((self.margin, y), line, font=self.font, fill=(0, 0, 0))
            y += self.line_height
        return image

    def to_png(self, text: str) -> bytes:
        buffer = io.BytesIO()
        self.convert(text).save(buffer, format="PNG")
        return buffer.getvalue()
