"""File integrity, in one place: sha256 of files and trees, checking a tree against its manifest, and
writing a directory atomically.

Export manifests, checkpoint indexes, the tiny model's build record and a local source's revision
all hash file bytes with :func:`sha256_file`. A manifest maps each file's path relative to its root
(``/``-separated) to its sha256, or to ``{"sha256": ..., "size": ...}``; :func:`check_tree` names the
files that are missing, extra or changed. :func:`atomic_directory` writes a folder beside its target
and renames it into place once everything is fsynced, so a reader never sees it half written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepsynth.errors import DeepSynthError

_CHUNK = 1 << 20


class IntegrityError(DeepSynthError):
    """A tree cannot be hashed: it holds a symbolic link or something that is not a regular file."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_files(
    directory: str | os.PathLike, *, skip: Collection[str | None] = (), error: type[DeepSynthError] = IntegrityError
) -> dict[str, Path]:
    """Every regular file under ``directory`` by relative path, sorted; links and special files refused.

    Args:
        directory: The root.
        skip: Relative paths left out (e.g. the manifest itself).
        error: The exception raised for a link or special file (a subclass the caller's callers catch).

    Raises:
        error: A symbolic link or something that is neither a file nor a folder.
    """
    directory = Path(directory)
    out: dict[str, Path] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink():
            raise error(f"{path}: symbolic links are not allowed (only regular files are hashed and verified)")
        if path.is_file():
            rel = path.relative_to(directory).as_posix()
            if rel not in skip:
                out[rel] = path
        elif not path.is_dir():
            raise error(f"{path}: not a regular file")
    return out


def hash_tree(
    directory: str | os.PathLike,
    *,
    skip: Collection[str | None] = (),
    with_size: bool = False,
    error: type[DeepSynthError] = IntegrityError,
) -> dict[str, Any]:
    """A manifest of ``directory``: relative path → sha256 (→ ``{"sha256", "size"}`` with ``with_size``).

    Args:
        directory: The root.
        skip: Relative paths left out.
        with_size: Record each file's size beside its hash.
        error: See :func:`tree_files`.
    """
    files = tree_files(directory, skip=skip, error=error)
    if not with_size:
        return {rel: sha256_file(path) for rel, path in files.items()}
    return {rel: {"sha256": sha256_file(path), "size": path.stat().st_size} for rel, path in files.items()}


@dataclass(frozen=True)
class TreeCheck:
    """How a tree differs from its manifest (each list sorted; all empty: the tree matches)."""

    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.changed)

    def first(self, *, ignore_extra: bool = False) -> tuple[str, str] | None:
        """The problem whose path sorts first, as ``(path, "missing" | "extra" | "changed")``, or None."""
        problems = [(rel, "missing") for rel in self.missing] + [(rel, "changed") for rel in self.changed]
        if not ignore_extra:
            problems += [(rel, "extra") for rel in self.extra]
        return min(problems, default=None)


def _matches(path: Path, entry: Any, with_size: bool) -> bool:
    """Whether a file matches its manifest entry (the size is compared before anything is hashed)."""
    if not with_size:
        return sha256_file(path) == entry
    if not isinstance(entry, dict) or path.stat().st_size != entry.get("size"):
        return False
    return sha256_file(path) == entry.get("sha256")


def check_tree(
    directory: str | os.PathLike,
    expected: dict[str, Any],
    *,
    skip: Collection[str | None] = (),
    with_size: bool = False,
    error: type[DeepSynthError] = IntegrityError,
) -> TreeCheck:
    """Compare the files under ``directory`` with a manifest made by :func:`hash_tree`.

    Only files found on disk are opened: a manifest's paths are never joined onto ``directory``.

    Args:
        directory: The root.
        expected: Relative path → sha256, or with ``with_size`` → ``{"sha256", "size"}`` (anything else
            counts as changed).
        skip: Relative paths on disk left out of the comparison (the manifest itself...).
        with_size: The manifest's shape (as for :func:`hash_tree`).
        error: See :func:`tree_files`.

    Returns:
        The files missing, extra and changed.
    """
    present = tree_files(directory, skip=skip, error=error)
    return TreeCheck(
        missing=sorted(set(expected) - set(present)),
        extra=sorted(set(present) - set(expected)),
        changed=[
            rel for rel, path in present.items() if rel in expected and not _matches(path, expected[rel], with_size)
        ],
    )


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory's entries (new names, renames) to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(directory: Path) -> None:
    for path in sorted(directory.rglob("*"), reverse=True):  # files before the folders holding them
        if path.is_symlink():
            continue
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        elif path.is_dir():
            fsync_dir(path)
    fsync_dir(directory)


@contextmanager
def atomic_directory(target: str | os.PathLike, *, replace: bool = True, tmp_name: str | None = None) -> Iterator[Path]:
    """Write a directory beside ``target`` and rename it into place when the block ends without error.

    Every file is fsynced before the rename and the parent after it. On an error the temporary folder is
    deleted and ``target`` is left as it was.

    Args:
        target: The directory to create (its parent is created if needed).
        replace: Replace an existing ``target`` (it is renamed aside, then deleted); ``False``: the final
            rename raises ``OSError`` if a non-empty ``target`` appeared meanwhile (and the temporary
            folder is deleted).
        tmp_name: Name of the temporary sibling (default: a unique ``.<target name>-*``); an existing
            folder of that name is deleted first.

    Yields:
        The temporary folder (mode 755) to write into.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if tmp_name is None:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    else:
        tmp = target.parent / tmp_name
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    tmp.chmod(0o755)  # mkdtemp makes it owner-only
    try:
        yield tmp
        _fsync_tree(tmp)
        stale = None
        if replace and target.exists():
            stale = Path(tempfile.mkdtemp(prefix=f".{target.name}-stale-", dir=target.parent))
            target.rename(stale / target.name)
        tmp.rename(target)
        fsync_dir(target.parent)
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after the rename
