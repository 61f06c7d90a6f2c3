"""A minimal PNG writer for 8-bit grayscale pages.

Pillow's PNG encoder picks a row filter adaptively, which costs more than the compression
itself on text pages and buys little: the pages are mostly flat paper and padding that zlib
already shrinks well. Writing unfiltered rows with zlib is about 2-3x faster for the same size,
and any PNG reader decodes the result to the identical pixels.
"""

from __future__ import annotations

import struct
import zlib

from PIL import Image

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_gray_png(image: Image.Image, level: int = 1) -> bytes:
    """Lossless PNG bytes of an ``L``-mode image, rows unfiltered, zlib at ``level`` (0-9)."""
    if image.mode != "L":
        raise ValueError(f"encode_gray_png: expected an 'L' image, got {image.mode!r}")
    width, height = image.size
    # Each row is prefixed with its filter type, 0 (none): a zero column left of the pixels.
    framed = Image.new("L", (width + 1, height), 0)
    framed.paste(image, (1, 0))
    rows = framed.tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, level)) + _chunk(b"IEND", b"")
