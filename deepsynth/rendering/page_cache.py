"""A content-addressed cache of rendered pages, shared across runs.

Rows are keyed by ``doc_hash`` (text + instruction + mode + render-settings fingerprint), so
a retraining run whose source gained a few documents renders only those. One SQLite file,
written by the parent process only (render workers never touch it).
"""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path
from typing import Any

# The per-rendering fields a cache hit restores; the document's own fields come from the caller.
CACHED_FIELDS = ("page_width", "page_height", "chars_total", "chars_rendered", "truncated", "missing_glyphs")


def _pack(pages: list[bytes]) -> bytes:
    header = struct.pack(f"<I{len(pages)}Q", len(pages), *map(len, pages))
    return header + b"".join(pages)


def _unpack(blob: bytes) -> list[bytes]:
    (count,) = struct.unpack_from("<I", blob)
    sizes = struct.unpack_from(f"<{count}Q", blob, 4)
    pages, offset = [], 4 + 8 * count
    for size in sizes:
        pages.append(blob[offset : offset + size])
        offset += size
    return pages


class PageCache:
    """Rendered pages and their layout facts by ``doc_hash``, in ``<folder>/pages.sqlite``."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "pages.sqlite"
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS pages (doc_hash TEXT PRIMARY KEY, facts TEXT NOT NULL, pages BLOB NOT NULL)")
        self.served = 0  # rows handed out from the cache (documents whose every mode was cached)

    def get(self, doc_hash: str) -> dict[str, Any] | None:
        """The cached fields and pages of a rendering, or None."""
        found = self._db.execute("SELECT facts, pages FROM pages WHERE doc_hash = ?", (doc_hash,)).fetchone()
        if found is None:
            return None
        return {**json.loads(found[0]), "pages": _unpack(found[1])}

    def put(self, row: dict[str, Any]) -> None:
        """Store a freshly rendered row (committed in batches by :meth:`commit`)."""
        facts = json.dumps({k: row[k] for k in CACHED_FIELDS})
        self._db.execute("INSERT OR REPLACE INTO pages VALUES (?, ?, ?)", (row["doc_hash"], facts, _pack(row["pages"])))

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.commit()
        self._db.close()
