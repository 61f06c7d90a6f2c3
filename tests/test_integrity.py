"""deepsynth.integrity: file and tree hashes, a tree checked against its manifest, atomic directories."""

from __future__ import annotations

import hashlib
import os

import pytest

from deepsynth.errors import DeepSynthError
from deepsynth.integrity import (
    IntegrityError,
    TreeCheck,
    atomic_directory,
    check_tree,
    hash_tree,
    sha256_file,
    tree_files,
)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.json").write_text('{"a": 1}')
    (root / "sub" / "b.txt").write_text("bee")
    (root / "sub" / "deeper" / "c.bin").write_bytes(bytes(range(256)) * 9000)  # > 1 MiB: several chunks
    return root


def test_sha256_file_is_the_sha256_of_the_bytes(tree):
    data = (tree / "sub" / "deeper" / "c.bin").read_bytes()
    assert sha256_file(tree / "sub" / "deeper" / "c.bin") == hashlib.sha256(data).hexdigest()


def test_hash_tree_maps_relative_posix_paths_to_hashes_and_sizes(tree):
    plain = hash_tree(tree, skip={"a.json"})
    assert plain == {
        "sub/b.txt": hashlib.sha256(b"bee").hexdigest(),
        "sub/deeper/c.bin": sha256_file(tree / "sub" / "deeper" / "c.bin"),
    }
    sized = hash_tree(tree, with_size=True)
    assert sized["a.json"] == {"sha256": hashlib.sha256(b'{"a": 1}').hexdigest(), "size": 8}
    assert sorted(sized) == ["a.json", "sub/b.txt", "sub/deeper/c.bin"]


@pytest.mark.parametrize("with_size", [False, True])
def test_check_tree_names_missing_extra_and_changed_files(tree, with_size):
    manifest = hash_tree(tree, with_size=with_size)
    assert not check_tree(tree, manifest, with_size=with_size)
    (tree / "sub" / "b.txt").write_text("bea")  # same size, other bytes
    (tree / "a.json").write_text('{"a": 12}')  # other size
    (tree / "sub" / "deeper" / "c.bin").unlink()
    (tree / "new.md").write_text("new")
    found = check_tree(tree, manifest, with_size=with_size)
    assert found == TreeCheck(missing=["sub/deeper/c.bin"], extra=["new.md"], changed=["a.json", "sub/b.txt"])
    assert found.first() == ("a.json", "changed")
    assert check_tree(tree, manifest, skip={"new.md"}, with_size=with_size).extra == []


def test_a_malformed_entry_counts_as_changed_and_manifest_paths_are_never_opened(tree, tmp_path):
    (tmp_path / "outside.txt").write_text("secret")
    manifest = {
        **hash_tree(tree, with_size=True),
        "a.json": "not a dict",
        "../outside.txt": {"sha256": sha256_file(tmp_path / "outside.txt"), "size": 6},
    }
    found = check_tree(tree, manifest, with_size=True)
    assert found.changed == ["a.json"] and found.missing == ["../outside.txt"]
    assert found.first(ignore_extra=True) == ("../outside.txt", "missing")


def test_links_are_refused_with_the_callers_error_class(tree):
    class Refused(DeepSynthError):
        pass

    os.symlink(tree / "a.json", tree / "link.json")
    with pytest.raises(IntegrityError, match="link.json: symbolic links are not allowed"):
        tree_files(tree)
    with pytest.raises(Refused, match="symbolic links"):
        check_tree(tree, {}, error=Refused)


def test_atomic_directory_appears_complete_and_replaces_the_old_one(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out-")
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").is_file()  # nothing changes before the block ends
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert oct(target.stat().st_mode & 0o777) == "0o755"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary or stale sibling left


def test_atomic_directory_on_error_leaves_the_target_and_no_temporary(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_directory(target, tmp_name=".tmp-out-1") as tmp:
            assert tmp == tmp_path / ".tmp-out-1"
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (target / "old.txt").read_text() == "old"


def test_atomic_directory_without_replace_refuses_a_target_that_appeared(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(OSError):
        with atomic_directory(target, replace=False) as tmp:
            (tmp / "mine.txt").write_text("mine")
            target.mkdir()
            (target / "theirs.txt").write_text("theirs")  # another process finished first
    assert [p.name for p in target.iterdir()] == ["theirs.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
