"""The page cache is checked, not trusted: a damaged entry or one filed under another document is
dropped with a warning and rendered again, and a damaged cache database is moved aside and recreated."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing

import pytest
from support.tamper import flipped

from deepsynth.data.generator import render_dataset
from deepsynth.rendering.config import RenderSettings

SETTINGS = RenderSettings(modes=["tiny"], workers=1)
DOCS = [
    {
        "id": f"d{i}",
        "split": "train",
        "text": f"Document {i} talks about rivers and bridges. " * (3 + i),
        "summary": "s",
        "instruction": None,
    }
    for i in range(3)
]


def pages_of(dataset):
    return [d.pages for d in dataset.iter_documents()]


@pytest.fixture
def cached(tmp_path):
    """``(cache_dir, pages rendered without any cache)`` after one run that filled the cache."""
    reference = pages_of(render_dataset(DOCS, SETTINGS, tmp_path / "plain"))
    render_dataset(DOCS, SETTINGS, tmp_path / "fill", cache_dir=tmp_path / "cache")
    return tmp_path / "cache", reference


def entries(db):
    """Rows of the cache by doc_hash, every column but the key."""
    columns = [c[1] for c in db.execute("PRAGMA table_info(pages)") if c[1] != "doc_hash"]
    rows = db.execute(f"SELECT doc_hash, {', '.join(columns)} FROM pages ORDER BY doc_hash").fetchall()
    return columns, {row[0]: row[1:] for row in rows}


def flip_a_page_byte(db):
    columns, rows = entries(db)
    key, values = next(iter(rows.items()))
    db.execute("UPDATE pages SET pages = ? WHERE doc_hash = ?", (flipped(values[columns.index("pages")]), key))


def file_under_another_document(db):
    columns, rows = entries(db)
    (first, values), (second, _) = list(rows.items())[:2]
    db.execute(f"UPDATE pages SET {', '.join(f'{c} = ?' for c in columns)} WHERE doc_hash = ?", (*values, second))


@pytest.mark.parametrize("damage", [flip_a_page_byte, file_under_another_document])
def test_a_bad_entry_is_dropped_with_a_warning_and_rendered_again(cached, tmp_path, caplog, damage):
    cache_dir, reference = cached
    with closing(sqlite3.connect(cache_dir / "pages.sqlite")) as db:
        damage(db)
        db.commit()
    with caplog.at_level(logging.WARNING, logger="deepsynth.rendering.page_cache"):
        again = render_dataset(DOCS, SETTINGS, tmp_path / "again", cache_dir=cache_dir)
    assert pages_of(again) == reference
    assert again.manifest["rows_from_cache"] == len(DOCS) - 1
    assert any("rendered again" in r.getMessage() and "pages.sqlite" in r.getMessage() for r in caplog.records)
    healed = render_dataset(DOCS, SETTINGS, tmp_path / "healed", cache_dir=cache_dir)
    assert healed.manifest["rows_from_cache"] == len(DOCS) and pages_of(healed) == reference


@pytest.mark.parametrize("damage", ["garbage", "torn"])
def test_a_damaged_cache_database_is_moved_aside_and_recreated(cached, tmp_path, caplog, damage):
    cache_dir, reference = cached
    path = cache_dir / "pages.sqlite"
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(bytes(range(256)) * (len(data) // 256 + 1))
    else:  # the header survives, the pages behind it are overwritten
        path.write_bytes(data[:4096] + b"\x00\xff" * ((len(data) - 4096) // 2))
    with caplog.at_level(logging.WARNING, logger="deepsynth.rendering.page_cache"):
        again = render_dataset(DOCS, SETTINGS, tmp_path / "again", cache_dir=cache_dir)
    assert pages_of(again) == reference and again.manifest["rows_from_cache"] == 0
    aside = [p for p in cache_dir.iterdir() if p.name.startswith("pages.sqlite.damaged-")]
    assert aside and any(str(path) in r.getMessage() and "moved aside" in r.getMessage() for r in caplog.records)
    healed = render_dataset(DOCS, SETTINGS, tmp_path / "healed", cache_dir=cache_dir)
    assert healed.manifest["rows_from_cache"] == len(DOCS) and pages_of(healed) == reference
