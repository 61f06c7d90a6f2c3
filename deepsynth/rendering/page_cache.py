"""A content-addressed cache of rendered pages, shared across runs, checked on every read.

Rows are keyed by ``doc_hash`` (text + instruction + mode + render-settings fingerprint), so
a retraining run whose source gained a few documents renders only those. One SQLite file,
written by the parent process only (render workers never touch it).

Each row stores a sha256 of its key, facts and pages: a row that fails it (a damaged blob, or a
row filed under another document) is dropped with a warning and the document is rendered again. A
damaged database file is moved aside, named in a warning, and a new one started: the cache is never
a reason to fail a render or to lose a document.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import struct
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# The per-rendering fields a cache hit restores; the document's own fields come from the caller.
CACHED_FIELDS = ("page_width", "page_height", "chars_total", "chars_rendered", "truncated", "missing_glyphs")
_COLUMNS = ("doc_hash", "facts", "pages", "sha256")
# SQLite's result codes for a file that is not (or no longer) a sound database.
_DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


def _pack(pages: list[bytes]) -> bytes:
    header = struct.pack(f"<I{len(pages)}Q", len(pages), *map(len, pages))
    return header + b"".join(pages)


def _unpack(blob: bytes) -> list[bytes]:
    (count,) = struct.unpack_from("<I", blob)
    sizes = struct.unpack_from(f"<{count}Q", blob, 4)
    pages, offset = [], 4 + 8 * count
    if offset + sum(sizes) != len(blob):
        raise ValueError("page sizes do not add up to the stored bytes")
    for size in sizes:
        pages.append(blob[offset : offset + size])
        offset += size
    return pages


def entry_sha256(doc_hash: str, facts: str, blob: bytes) -> str:
    """Checksum of one row: its key, its facts and its packed pages."""
    digest = hashlib.sha256(doc_hash.encode())
    digest.update(b"\0" + facts.encode() + b"\0")
    digest.update(blob)
    return digest.hexdigest()


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    return getattr(exc, "sqlite_errorname", None) in _DAMAGED


class PageCache:
    """Rendered pages and their layout facts by ``doc_hash``, in ``<folder>/pages.sqlite``."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "pages.sqlite"
        self.served = 0  # rows handed out from the cache (documents whose every mode was cached)
        self.dropped = 0  # rows that failed their check and were removed
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            self._db = self._recreate(exc)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            found = [row[1] for row in db.execute("PRAGMA table_info(pages)")]
            if found and tuple(found) != _COLUMNS:  # rows written without checksums cannot be checked
                db.execute("DROP TABLE pages")
            db.execute(
                "CREATE TABLE IF NOT EXISTS pages "
                "(doc_hash TEXT PRIMARY KEY, facts TEXT NOT NULL, pages BLOB NOT NULL, sha256 TEXT NOT NULL)"
            )
            db.commit()
        except BaseException:
            db.close()
            raise
        return db

    def _recreate(self, exc: sqlite3.DatabaseError) -> sqlite3.Connection:
        """Move the damaged file (and its WAL side files) aside and start an empty cache."""
        aside = self.path.with_name(
            f"{self.path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9}"
        )
        for suffix in ("", "-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                side.replace(aside.with_name(aside.name + suffix))
        logger.warning(
            "%s: the page cache database is damaged (%s); moved aside to %s and started a new one "
            "(pages are rendered again)",
            self.path,
            exc,
            aside,
        )
        return self._open()

    def _guard(self, exc: sqlite3.DatabaseError) -> None:
        """Recover from a damaged database found mid-run; anything else (locked, disk full) propagates."""
        if not _is_damage(exc):
            raise exc
        try:
            self._db.close()
        except sqlite3.Error:
            pass
        self._db = self._recreate(exc)

    def get(self, doc_hash: str) -> dict[str, Any] | None:
        """The cached fields and pages of a rendering, or None (also for a row that fails its check)."""
        try:
            found = self._db.execute(
                "SELECT facts, pages, sha256 FROM pages WHERE doc_hash = ?", (doc_hash,)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            self._guard(exc)
            return None
        if found is None:
            return None
        facts, blob, sha = found
        try:
            if entry_sha256(doc_hash, facts, blob) != sha:
                raise ValueError("its checksum does not match (damaged, or filed under another document)")
            values = json.loads(facts)
            missing = [k for k in CACHED_FIELDS if k not in values]
            if missing:
                raise ValueError(f"it lacks {missing}")
            return {**values, "pages": _unpack(blob)}
        except (ValueError, TypeError, struct.error) as exc:
            self._drop(doc_hash, exc)
            return None

    def _drop(self, doc_hash: str, why: Exception) -> None:
        logger.warning("%s: page cache entry %s dropped, the document is rendered again: %s", self.path, doc_hash, why)
        self.dropped += 1
        try:
            self._db.execute("DELETE FROM pages WHERE doc_hash = ?", (doc_hash,))
        except sqlite3.DatabaseError as exc:
            self._guard(exc)

    def put(self, row: dict[str, Any]) -> None:
        """Store a freshly rendered row with its checksum (committed in batches by :meth:`commit`)."""
        facts = json.dumps({k: row[k] for k in CACHED_FIELDS})
        blob = _pack(row["pages"])
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?)",
                (row["doc_hash"], facts, blob, entry_sha256(row["doc_hash"], facts, blob)),
            )
        except sqlite3.DatabaseError as exc:
            self._guard(exc)

    def commit(self) -> None:
        """Write the rows stored since the last commit."""
        try:
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            self._guard(exc)

    def close(self) -> None:
        """Commit and close the database."""
        self.commit()
        self._db.close()
