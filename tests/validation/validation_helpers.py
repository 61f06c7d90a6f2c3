"""Helpers for validation tests: real PNG pages and small rendered datasets.

A uniquely named module (not conftest) so that test files can import it without clashing
with other test folders' conftest modules.
"""

from __future__ import annotations

import functools
import io
import itertools

from PIL import Image

from deepsynth.data.rendered import RenderedDatasetWriter
from deepsynth.rendering.modes import MODES


@functools.lru_cache(maxsize=None)
def png_bytes(width: int, height: int, noisy: bool = False) -> bytes:
    """A real PNG page (noisy pages are large enough to truncate or corrupt meaningfully)."""
    if noisy:
        image = Image.effect_noise((width, height), 40).convert("RGB")
    else:
        image = Image.new("RGB", (width, height), (127, 127, 127))
    buf = io.BytesIO()
    image.save(buf, "PNG")
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


def write_dataset(path, rows, rows_per_shard=4):
    """Write ``rows`` as a rendered dataset at ``path`` and return it."""
    writer = RenderedDatasetWriter(path, {"font": "test"}, rows_per_shard=rows_per_shard)
    for row in rows:
        writer.write(row)
    return writer.close()
