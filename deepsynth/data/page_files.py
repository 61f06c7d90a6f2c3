"""Pages of a rendered dataset as PNG files, one safe and unique file name per document, mode and page.

A document id is data: it may hold ``/``, be ``..``, differ from another id only in characters a file
name cannot hold (``a/b`` and ``a_b``), repeat (``1`` and ``"1"`` both read as ``1``), or be longer than
any file system allows. Each id gets its :func:`~deepsynth.data.file_names.file_stem` (a safe id keeps
its name; any other gets a sanitized, shortened stem plus a short hash of the exact id); a name already
taken (a repeated id, or one differing only in letter case) gets a counter. ``index.json`` beside the
pages maps every file back to its id, mode, page and occurrence.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deepsynth.data.file_names import file_stem

INDEX_FILE = "index.json"


class PageNames:
    """Assigns file names to (id, mode) rows in dataset order: distinct documents never share a name.

    A rendered dataset holds one row per document and mode, so the second row with an id and mode
    already named is another document with the same id.
    """

    def __init__(self) -> None:
        self._taken: set[tuple[str, str]] = set()
        self._seen: dict[tuple[bytes, str], int] = {}  # (sha256 of the id, mode) -> rows so far

    def stem(self, doc_id: str, mode: str) -> tuple[str, int]:
        """The file stem for this row, and which document with this exact id it is (1 for the first, 2, ...)."""
        key = (hashlib.sha256(doc_id.encode("utf-8", "surrogatepass")).digest(), mode)
        occurrence = self._seen[key] = self._seen.get(key, 0) + 1
        base = file_stem(doc_id)
        stem, counter = base, 1
        while (stem.casefold(), mode) in self._taken:  # a repeated id, or case-insensitive file systems (macOS)
            counter += 1
            stem = f"{base}-{counter}"
        self._taken.add((stem.casefold(), mode))
        return stem, occurrence


def write_page_pngs(rows: Iterable[dict[str, Any]], png_dir: str | Path) -> Path:
    """Write every page as ``png_dir/<stem>-<mode>-<page>.png`` and ``png_dir/index.json``; return the index's path.

    Args:
        rows: Rows with ``id``, ``mode`` and ``pages`` (PNG bytes), in dataset order
            (``RenderedDataset.iter_rows(columns=["id", "mode", "pages"])``).
        png_dir: Folder for the pages; PNG files of an earlier call are removed first.

    The index lists ``{"file", "id", "mode", "page", "occurrence"}`` per page (``occurrence``: 1 for the
    first document with that id, 2 for the next, ...).
    """
    png_dir = Path(png_dir)
    png_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*png_dir.glob("*.png"), png_dir / INDEX_FILE]:
        stale.unlink(missing_ok=True)
    names, index = PageNames(), []
    for row in rows:
        stem, occurrence = names.stem(row["id"], row["mode"])
        for page, png in enumerate(row["pages"]):
            name = f"{stem}-{row['mode']}-{page}.png"
            (png_dir / name).write_bytes(png)
            index.append({"file": name, "id": row["id"], "mode": row["mode"], "page": page, "occurrence": occurrence})
    path = png_dir / INDEX_FILE
    path.write_text(json.dumps({"pages": index}, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
