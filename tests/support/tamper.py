"""The one way tests corrupt stored bytes: flip every bit of one byte."""

from __future__ import annotations

from pathlib import Path


def flipped(data: bytes, at: int | None = None) -> bytes:
    """``data`` with the byte at ``at`` (default: the middle one; negative counts from the end) inverted."""
    bad = bytearray(data)
    bad[len(bad) // 2 if at is None else at] ^= 0xFF
    return bytes(bad)


def flip_file_byte(path: str | Path, at: int | None = None) -> None:
    """Invert one byte of the file at ``path`` in place (see :func:`flipped`)."""
    path = Path(path)
    path.write_bytes(flipped(path.read_bytes(), at))
