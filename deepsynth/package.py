"""Export packages on disk: the sha256 manifest, and a safe way to open a package someone hands you.

:func:`open_package` accepts a directory or a zip. A zip is checked entry by entry before anything
is written (no absolute paths, no ``..``, no links or devices, a cap on the uncompressed total; two
entries that would land on one path are refused), and against its own manifest, read first: every
entry must be a listed file declaring its listed size, and the bytes actually inflated are counted
per entry and in total, so lying headers cannot exceed either. Every file is then checked against
``manifest.json``: listed, same size and sha256, and of a type that is only ever read as data (safetensors, JSON, text).
Pickle-capable formats (``.bin``, ``.pt``, ``.pkl``...) are refused outright, never opened. The one
file a manifest may leave out is the package's own zip (a top-level ``*.zip``, never read when
loading), and the adapter weights must be the adapter the manifest names (``adapter_sha256``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from deepsynth.adapter_files import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    TEXT_ENCODER_DIR,
    TEXT_ENCODER_META,
    TRAINER_CONFIG,
    safetensors_tensor_count,
)
from deepsynth.errors import DeepSynthError
from deepsynth.integrity import check_tree, hash_tree, tree_files

MANIFEST = "manifest.json"
PACKAGE_FORMAT = "deepsynth-export"
PACKAGE_VERSION = 1
# Data-only formats: weights as safetensors, configs as JSON, and text (model card, requirements,
# the standalone script, which is shipped for users and never executed when a package is opened).
ALLOWED_SUFFIXES = {".safetensors", ".json", ".txt", ".md", ".py", ".jinja"}
# A merged full-size DeepSeek-OCR (3.3B parameters) is 13.2 GB in float32; an adapter package is megabytes.
DEFAULT_MAX_TOTAL_BYTES = 16 * 1024**3
#: A manifest lists files, never holds data: a bigger one is refused before it is parsed.
MAX_MANIFEST_BYTES = 16 * 1024**2
MAX_ENTRIES = 10_000
#: How a package may name a model it does not carry: a profile or hub id (``tiny``, ``owner/name``), never a path.
LOGICAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")
_CHUNK = 1 << 20


class PackageError(DeepSynthError):
    """A package is malformed, tampered with, or unsafe to open."""


def _files(directory: Path) -> list[Path]:
    return list(tree_files(directory, error=PackageError).values())


def write_manifest(directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Hash every file under ``directory`` into ``manifest.json``.

    Args:
        directory: The export directory (complete, except for the manifest).
        extra: More top-level entries (adapter hash, package name...).

    Returns:
        The manifest written.
    """
    directory = Path(directory)
    files = hash_tree(directory, skip={MANIFEST, (extra or {}).get("package_name")}, with_size=True, error=PackageError)
    manifest = {"format": PACKAGE_FORMAT, "version": PACKAGE_VERSION, **(extra or {}), "files": files}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """Parse ``manifest.json`` of a package directory, refusing duplicate keys at any level.

    Raises:
        PackageError: No readable manifest, a duplicate key, or not a DeepSynth export manifest.
    """
    directory = Path(directory)
    try:
        text = (directory / MANIFEST).read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise PackageError(f"{directory}: no readable {MANIFEST} ({exc})") from None
    return parse_manifest(text, directory)


def parse_manifest(text: str | bytes, where: str | os.PathLike) -> dict[str, Any]:
    """Parse a manifest's text (from a folder or a zip entry) as :func:`read_manifest` does; ``where`` names it."""
    try:
        manifest = json.loads(text, object_pairs_hook=_unique_keys)
    except ValueError as exc:
        raise PackageError(f"{where}: no readable {MANIFEST} ({exc})") from None
    except _DuplicateKey as exc:
        raise PackageError(
            f"{where}: {MANIFEST} has a duplicate key {str(exc.args[0])[:200]!r} (ambiguous; refused)"
        ) from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != PACKAGE_FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        raise PackageError(f"{where}: {MANIFEST} is not a DeepSynth export manifest")
    return manifest


def _own_zip(directory: Path | str, manifest: dict[str, Any]) -> str | None:
    """The package's own zip, the one file the manifest does not list; it must be a top-level ``*.zip``."""
    name = manifest.get("package_name")
    if name is None:
        return None
    if not isinstance(name, str) or "/" in name or "\\" in name or not name.endswith(".zip"):
        raise PackageError(
            f"{directory}: {MANIFEST} package_name {str(name)[:200]!r} is not a top-level .zip "
            "file name (only the package's own zip may be left out of the manifest)"
        )
    return name


def verify_directory(directory: str | os.PathLike) -> dict[str, Any]:
    """Check a package directory against its manifest without loading anything from it.

    Args:
        directory: A package directory.

    Returns:
        The manifest.

    Raises:
        PackageError: No manifest, a duplicate manifest key, a link, a missing/extra/changed file, a file
            type that may hold pickle, or adapter weights other than the manifest's ``adapter_sha256``.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    listed: dict[str, Any] = manifest["files"]
    diff = check_tree(
        directory, listed, skip={MANIFEST, _own_zip(directory, manifest)}, with_size=True, error=PackageError
    )
    extra, missing, changed = set(diff.extra), set(diff.missing), set(diff.changed)
    for rel in sorted(set(listed) | extra):
        if PurePosixPath(rel).suffix.lower() not in ALLOWED_SUFFIXES:
            raise PackageError(
                f"{directory}: {rel[:200]} is not an allowed file type (only safetensors, JSON and text "
                "are read; pickle-capable files are refused)"
            )
        if rel in extra:
            raise PackageError(f"{directory}: {rel} is not listed in {MANIFEST}")
        if rel in missing:
            raise PackageError(f"{directory}: {rel[:200]} is listed in {MANIFEST} but missing")
        if rel in changed:
            raise PackageError(f"{directory}: {rel} does not match its sha256 in {MANIFEST} (modified or corrupt)")
    _check_adapter_identity(directory, manifest)
    _check_self_contained(directory, manifest)
    return manifest


def _named_model(directory: Path, rel: str, key: str, value: Any) -> None:
    """Refuse a model a package names by a path: weights come from the package or a named profile/hub model."""
    if value is None or (isinstance(value, str) and LOGICAL_NAME.fullmatch(value) and ".." not in value):
        return
    raise PackageError(
        f"{directory}: {rel} {key} is {str(value)[:200]!r}, a path outside the package: a verified package "
        "loads weights only from itself or a profile/hub name (tiny, owner/name); to use a local base, "
        "pass base_model= (--base-model) yourself"
    )


def _json_file(directory: Path, rel: str) -> dict[str, Any]:
    try:
        data = json.loads((directory / rel).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackageError(f"{directory}: {rel} is not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PackageError(f"{directory}: {rel} is not a JSON object")
    return data


def _check_self_contained(directory: Path, manifest: dict[str, Any]) -> None:
    """The base model and the text encoder a package names are not paths on the loading machine.

    Checked: ``trainer_config.json``'s ``model_name`` (else ``adapter_config.json``'s
    ``base_model_name_or_path``, which loading falls back to), and the text encoder's ``source``
    when its weights are not in the package. Read after every hash matched.
    """
    files = manifest["files"]
    trainer = _json_file(directory, TRAINER_CONFIG) if TRAINER_CONFIG in files else {}
    if trainer.get("model_name") is not None:
        _named_model(directory, TRAINER_CONFIG, "model_name", trainer["model_name"])
    elif ADAPTER_CONFIG in files:
        base = _json_file(directory, ADAPTER_CONFIG).get("base_model_name_or_path")
        _named_model(directory, ADAPTER_CONFIG, "base_model_name_or_path", base)
    encoder = f"{TEXT_ENCODER_DIR}/{TEXT_ENCODER_META}"
    if encoder in files:
        meta = _json_file(directory, encoder)
        if meta.get("weights_included") is not True:
            _named_model(directory, encoder, "source (weights_included: false)", meta.get("source"))


def _check_adapter_identity(directory: Path, manifest: dict[str, Any]) -> None:
    """Adapter weights, wherever a package holds them, are the adapter named by ``adapter_sha256`` (and not empty).

    Only a merged export (``merged: true`` and no adapter file) has no adapter to compare.
    """
    expected = manifest.get("adapter_sha256")
    entry = manifest["files"].get(ADAPTER_WEIGHTS)
    if entry is None:
        if manifest.get("merged") is True:
            return
        raise PackageError(f"{directory}: no {ADAPTER_WEIGHTS} in an adapter package")
    if entry.get("sha256") != expected:
        raise PackageError(
            f"{directory}: {ADAPTER_WEIGHTS} (sha256 {entry.get('sha256')}) is not the adapter_sha256 "
            f"{str(expected)[:64]} the manifest records (weights replaced after export)"
        )
    try:
        count = safetensors_tensor_count(directory / ADAPTER_WEIGHTS)
    except ValueError as exc:
        raise PackageError(str(exc)) from None
    if count == 0:
        raise PackageError(
            f"{directory}: {ADAPTER_WEIGHTS} holds no tensors: an empty adapter would run as the base model "
            "unchanged (refused)"
        )


def _check_member(info: zipfile.ZipInfo) -> str:
    name = info.filename
    # Unix permission bits without a file type (zipfile.writestr writes 0o600) mean a plain file.
    kind = stat.S_IFMT(info.external_attr >> 16)
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or PurePosixPath(name).is_absolute():
        raise PackageError(f"zip entry {name!r}: absolute paths are not allowed")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise PackageError(f"zip entry {name!r}: '..' is not allowed")
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        raise PackageError(f"zip entry {name!r}: links and special files are not allowed")
    return "/".join(p for p in parts if p not in ("", "."))


def _check_unique(path: str | os.PathLike, infos: list[zipfile.ZipInfo], names: list[str]) -> None:
    """Refuse two entries for one path, and a path that is both a file and a folder."""
    files: set[str] = set()
    for info, name in zip(infos, names):
        if name and not info.is_dir():
            if name in files:
                raise PackageError(f"{path}: duplicate entry {name!r} (ambiguous; refused)")
            files.add(name)
    for name in files:
        parents = PurePosixPath(name).parents
        clash = next((str(p) for p in parents if str(p) in files), None)
        if clash is not None:
            raise PackageError(f"{path}: {clash!r} is both a file and a folder (entry {name!r})")


def extract_zip(
    path: str | os.PathLike, dest: str | os.PathLike, max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
) -> Path:
    """Extract a package zip into ``dest`` after checking every entry.

    Args:
        path: The zip.
        dest: Empty or new directory.
        max_total_bytes: Cap on the uncompressed total (declared and actually inflated).

    Returns:
        ``dest``.

    Raises:
        PackageError: An unsafe entry, too many bytes, no manifest, or an entry it does not list at that size.
    """
    dest = Path(dest)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise PackageError(f"{path}: not a readable zip ({exc})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise PackageError(f"{path}: {len(infos)} entries (limit {MAX_ENTRIES})")
        names = [_check_member(i) for i in infos]
        _check_unique(path, infos, names)
        declared = sum(i.file_size for i in infos)
        if declared > max_total_bytes:
            raise PackageError(f"{path}: uncompressed size {declared} bytes exceeds the limit of {max_total_bytes}")
        limits = _entry_limits(path, archive, infos, names)
        dest.mkdir(parents=True, exist_ok=True)
        written = 0
        for info, name in zip(infos, names):
            if name not in limits:
                continue  # a folder, or the package's own zip (never read): not written
            target, entry_bytes = dest / name, 0
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "xb") as out:
                while chunk := src.read(_CHUNK):
                    written, entry_bytes = written + len(chunk), entry_bytes + len(chunk)
                    if written > max_total_bytes:
                        raise PackageError(f"{path}: inflates past the limit of {max_total_bytes} bytes")
                    if entry_bytes > limits[name]:
                        raise PackageError(f"{path}: {name[:200]} inflates past its {limits[name]} listed bytes")
                    out.write(chunk)
    return dest


def _entry_limits(
    path: str | os.PathLike, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], names: list[str]
) -> dict[str, int]:
    """``{entry: bytes it may inflate to}`` from the zip's manifest, read (bounded) before anything is written.

    Every file entry must be the manifest or a file it lists, declaring the size it lists; the
    package's own zip is left out (skipped, never written).

    Raises:
        PackageError: No manifest, an unlisted entry, or an entry declaring another size than listed.
    """
    entries = {name: info for info, name in zip(infos, names) if name and not info.is_dir()}
    if MANIFEST not in entries:
        raise PackageError(f"{path}: no {MANIFEST} in the zip (nothing was extracted)")
    if entries[MANIFEST].file_size > MAX_MANIFEST_BYTES:
        raise PackageError(
            f"{path}: {MANIFEST} declares {entries[MANIFEST].file_size} bytes (limit {MAX_MANIFEST_BYTES})"
        )
    with archive.open(entries[MANIFEST]) as src:
        text = src.read(MAX_MANIFEST_BYTES + 1)
    if len(text) > MAX_MANIFEST_BYTES:
        raise PackageError(f"{path}: {MANIFEST} inflates past {MAX_MANIFEST_BYTES} bytes")
    manifest = parse_manifest(text, path)
    listed, own_zip = manifest["files"], _own_zip(path, manifest)
    limits = {MANIFEST: MAX_MANIFEST_BYTES}
    for name, info in entries.items():
        if name == MANIFEST or name == own_zip:
            continue
        size = listed[name].get("size") if isinstance(listed.get(name), dict) else None
        if name not in listed:
            raise PackageError(f"{path}: {name[:200]} is not listed in {MANIFEST} (nothing was extracted)")
        if not isinstance(size, int) or isinstance(size, bool) or info.file_size != size:
            raise PackageError(
                f"{path}: {name[:200]} declares {info.file_size} bytes, {MANIFEST} lists {size!r} "
                "(nothing was extracted)"
            )
        limits[name] = size
    return limits


def create_zip(directory: str | os.PathLike, zip_path: str | os.PathLike) -> Path:
    """Zip a package directory (manifest included, the zip itself excluded), deterministically ordered."""
    directory, zip_path = Path(directory), Path(zip_path)
    tmp = zip_path.with_name(f".{zip_path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _files(directory):
            if path.resolve() in (zip_path.resolve(), tmp.resolve()):
                continue
            archive.write(path, path.relative_to(directory).as_posix())
    tmp.replace(zip_path)
    return zip_path


def open_package(
    path: str | os.PathLike, dest: str | os.PathLike | None = None, max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
) -> Path:
    """Verify a package (directory or zip) and return the directory to load it from.

    Nothing in the package is parsed or loaded before this returns: callers read its safetensors and
    JSON only after every hash matched.

    Args:
        path: A package directory or zip file.
        dest: Where to extract a zip (default: a new temporary directory; the caller removes it).
        max_total_bytes: Cap on a zip's uncompressed size.

    Returns:
        The verified package directory.

    Raises:
        PackageError: The package is unsafe, incomplete or modified.
    """
    path = Path(path)
    if path.is_dir():
        verify_directory(path)
        return path
    if not path.is_file():
        raise PackageError(f"{path}: no such package")
    target = Path(dest) if dest else Path(tempfile.mkdtemp(prefix="deepsynth-package-"))
    try:
        extract_zip(path, target, max_total_bytes)
        verify_directory(target)
    except BaseException:
        if dest is None:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return target
