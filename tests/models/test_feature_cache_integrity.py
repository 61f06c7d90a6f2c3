"""The on-disk feature cache is checked, not trusted: an entry that is damaged, unreadable or filed under
another page is dropped with a warning and computed again; concurrent writers of one entry are harmless."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest
import torch
from support.tamper import flip_file_byte

from deepsynth.models.feature_cache import FeatureCache
from deepsynth.models.vision import PageFeatures

IDENTITY = "tiny@local#test"


def features(seed: int) -> PageFeatures:
    generator = torch.Generator().manual_seed(seed)
    return PageFeatures(torch.randn(6, 8, generator=generator), torch.randn(2, 3, 8, generator=generator), (2, 1))


def same(a: PageFeatures, b: PageFeatures) -> bool:
    return (
        a.grid == b.grid
        and torch.equal(a.global_features, b.global_features)
        and torch.equal(a.local_features, b.local_features)
    )


def never() -> PageFeatures:
    raise AssertionError("the cached entry should have been used")


def entry_path(cache: FeatureCache, png: bytes) -> object:
    return cache.directory / f"{cache.key(png, 'tiny')}.safetensors"


def test_an_entry_written_by_one_process_is_read_back_by_another(tmp_path):
    FeatureCache(IDENTITY, tmp_path).get_or_compute(b"page-1", "tiny", lambda: features(1))
    assert same(FeatureCache(IDENTITY, tmp_path).get_or_compute(b"page-1", "tiny", never), features(1))


def flip_a_data_byte(cache):
    flip_file_byte(entry_path(cache, b"page-1"), -5)  # inside the last tensor's values; the header still parses


def truncate(cache):
    path = entry_path(cache, b"page-1")
    path.write_bytes(path.read_bytes()[:40])


def file_under_another_page(cache):
    cache.get_or_compute(b"page-2", "tiny", lambda: features(2))
    entry_path(cache, b"page-1").write_bytes(entry_path(cache, b"page-2").read_bytes())


@pytest.mark.parametrize("damage", [flip_a_data_byte, truncate, file_under_another_page])
def test_a_bad_entry_is_dropped_with_a_warning_and_computed_again(tmp_path, caplog, damage):
    writer = FeatureCache(IDENTITY, tmp_path)
    writer.get_or_compute(b"page-1", "tiny", lambda: features(1))
    damage(writer)
    calls = []
    reader = FeatureCache(IDENTITY, tmp_path)
    with caplog.at_level(logging.WARNING, logger="deepsynth.models.feature_cache"):
        got = reader.get_or_compute(b"page-1", "tiny", lambda: calls.append(1) or features(1))
    assert calls == [1] and same(got, features(1)) and reader.misses == 1
    path = str(entry_path(reader, b"page-1"))
    assert any(path in r.getMessage() and "computed again" in r.getMessage() for r in caplog.records)
    assert same(FeatureCache(IDENTITY, tmp_path).get_or_compute(b"page-1", "tiny", never), features(1))


WRITER = textwrap.dedent("""
    import sys, torch
    from deepsynth.models.feature_cache import FeatureCache
    from deepsynth.models.vision import PageFeatures
    for round in range(int(sys.argv[2])):
        cache = FeatureCache("tiny@local#test", sys.argv[1])  # a fresh process view: reads disk, writes misses
        for page in range(8):
            g = torch.Generator().manual_seed(page)
            cache.get_or_compute(f"page-{page}".encode(), "tiny",
                                 lambda: PageFeatures(torch.randn(64, 32, generator=g), None, (0, 0)))
""")


@pytest.mark.slow
def test_concurrent_writers_of_the_same_entries_are_harmless(tmp_path):
    """Two processes (like two training ranks) fill the same entries at once: no error, no torn file."""
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "5"], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert not any("dropped" in e for e in errors), errors
    cache = FeatureCache(IDENTITY, tmp_path)
    assert sorted(p.suffix for p in cache.directory.iterdir()) == [".safetensors"] * 8  # no temp files left
    for page in range(8):
        generator = torch.Generator().manual_seed(page)
        expected = torch.randn(64, 32, generator=generator)
        assert torch.equal(cache.get_or_compute(f"page-{page}".encode(), "tiny", never).global_features, expected)
