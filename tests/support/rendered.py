"""The one builder of rendered datasets for tests: real PNG pages, rows of the full schema, a writer.

Shared test helpers live in tests/support/ and are imported as ``support.<module>`` from any test
folder. Datasets rendered by the real
renderer come from the ``rendered_dataset`` fixture of ``support.adapters``.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import struct
import zlib

from PIL import Image, ImageDraw, ImageFont

from deepsynth.data.rendered import RenderedDatasetWriter
from deepsynth.rendering.modes import MODES

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#: Reference summaries; each test document's text starts with (or contains) one of them.
SUMMARIES = [
    "Revenue grew twelve percent.",
    "The bridge reopens in May.",
    "Rain is expected all week.",
    "The team won the final.",
]


@functools.cache
def png_bytes(width: int, height: int, noisy: bool = False) -> bytes:
    """A real PNG page (noisy pages are large enough to truncate or corrupt meaningfully)."""
    if noisy:
        image = Image.effect_noise((width, height), 40).convert("RGB")
    else:
        image = Image.new("RGB", (width, height), (127, 127, 127))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def draw_page(text: str, size=(512, 512)) -> bytes:
    """A white page with ``text`` drawn in black, one sentence per line, as PNG bytes."""
    img = Image.new("RGB", size, "white")
    font = ImageFont.truetype(FONT, 28) if os.path.exists(FONT) else ImageFont.load_default(28)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(text.split(". ")):
        draw.text((20, 20 + 40 * i), line, fill="black", font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


_counter = itertools.count()


def make_row(id=None, split="train", mode="tiny", text=None, summary="Short.", pages=None, **overrides):
    """One rendered row with every column of the schema; pages default to correctly sized PNGs."""
    n = next(_counter)
    width, height = MODES[mode].page_size if mode in MODES else (512, 512)
    if text is None:
        text = f"Document number {n} explains topic {n * 7919} in a few plain sentences for testing."
    row = {
        "id": f"doc-{n}" if id is None else id,
        "split": split,
        "mode": mode,
        "text": text,
        "summary": summary,
        "instruction": "Summarize this document:",
        "pages": [png_bytes(width, height)] if pages is None else pages,
        "page_width": width,
        "page_height": height,
        "chars_total": len(text or ""),
        "chars_rendered": len(text or ""),
        "truncated": False,
        "missing_glyphs": [],
        "doc_hash": f"h{n}",
    }
    row.update(overrides)
    return row


def write_dataset(path, rows, rows_per_shard=4, settings=None, extra=None):
    """Write ``rows`` as a rendered dataset at ``path`` and return it.

    Args:
        settings: The manifest's render settings (default ``{"font": "test"}``).
        extra: Further manifest entries (font, truncated, missing-glyph documents).
    """
    writer = RenderedDatasetWriter(path, settings or {"font": "test"}, rows_per_shard=rows_per_shard)
    for row in rows:
        writer.write(row)
    return writer.close(extra=extra)


def write_drawn_dataset(path, n_docs=4, mode="tiny", size=(512, 512), pages=1, instruction=None):
    """A small training split of ``n_docs`` documents whose pages show their text (summaries cycle
    through SUMMARIES)."""
    rows = []
    for i in range(n_docs):
        summary = SUMMARIES[i % len(SUMMARIES)]
        text = f"Document {i}. {summary} More details follow in the body"
        rows.append(
            make_row(
                id=f"doc-{i}",
                split="train",
                mode=mode,
                text=text,
                summary=summary,
                instruction=instruction,
                pages=[draw_page(f"{text}. Page {p + 1}", size) for p in range(pages)],
                page_width=size[0],
                page_height=size[1],
                doc_hash=f"h{i}",
            )
        )
    return write_dataset(path, rows, rows_per_shard=64, settings={"mode": mode, "test": True})


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width=100_000, height=100_000) -> bytes:
    """A tiny PNG whose header claims a huge 1-bit image."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    body = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body
