"""Reference → verified directory: what a server (or a merge) may attach to its one shared base model.

A reference is a :class:`~deepsynth.registry.refs.ModelRef`: a registry alias is pinned to its version
(and that version's adapter sha256) first, so the version reported is the one loaded; the package is
then fetched and verified (manifest sha256, registry tags, no pickle-capable files, safe zip
extraction) before a byte of it is loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsynth.adapter_files import ADAPTER_CONFIG, ADAPTER_WEIGHTS, PROJECTOR_WEIGHTS, TEXT_ENCODER_DIR
from deepsynth.errors import ConfigError, DeepSynthError
from deepsynth.inference.loading import read_trainer_config
from deepsynth.package import MANIFEST
from deepsynth.registry.refs import ModelRef


@dataclass
class VerifiedAdapter:
    """A LoRA-only adapter package, verified and on local disk, and where it came from."""

    ref: str
    directory: Path
    sha256: str
    trainer_config: dict[str, Any]
    registry_name: str | None = None
    version: str | None = None
    alias: str | None = None


def pin(ref: str) -> ModelRef:
    """``ref`` parsed and pinned: a registry alias resolved to its version (and sha256) now; a path as is.

    Raises:
        ConfigError: A registry reference that names neither a version nor an alias.
    """
    parsed = ModelRef.parse(ref)
    if parsed.is_registry and not (parsed.version or parsed.alias):
        raise ConfigError(f"{ref}: name a version (models:/NAME/VERSION) or an alias (models:/NAME@ALIAS)")
    return parsed.pin()


def _fetch_errors_named(ref: str, fetch: Any, *args: Any) -> Any:
    """``fetch(*args)``, with a registry's own errors (unknown model, alias, outage) as one :class:`ConfigError`."""
    try:
        return fetch(*args)
    except DeepSynthError:
        raise
    except Exception as exc:  # noqa: BLE001 - MlflowException and the transport errors under it
        if not ref.startswith("models:/"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{ref}: not available from the registry ({first})") from None


def _require_package(source: ModelRef, ref: str) -> None:
    """Refuse a local folder without a manifest before anything is read (the server never loads unverified)."""
    if not source.is_registry and Path(source.text).is_dir() and not (Path(source.text) / MANIFEST).is_file():
        raise ConfigError(f"{ref}: not an export package (no {MANIFEST}); export the adapter first")


def _check_servable(directory: Path, ref: str) -> str:
    """The package's adapter sha256, after refusing what one shared base cannot serve."""
    if not (directory / ADAPTER_CONFIG).is_file() or not (directory / ADAPTER_WEIGHTS).is_file():
        raise ConfigError(f"{ref}: holds no LoRA adapter (a merged model cannot share a base; use deepsynth summarize)")
    if (directory / PROJECTOR_WEIGHTS).is_file() or (directory / TEXT_ENCODER_DIR).is_dir():
        raise ConfigError(
            f"{ref}: carries a trained projector or text encoder, which adapters on one shared base "
            "model cannot differ in; serve LoRA-only adapters"
        )
    return json.loads((directory / MANIFEST).read_text())["adapter_sha256"]


def fetch_adapter(ref: str, work_dir: str | os.PathLike) -> VerifiedAdapter:
    """Pin ``ref``, download or extract it into ``work_dir``, verify it and check one shared base can serve it.

    Args:
        ref: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, an export directory or a zip package.
        work_dir: Scratch directory for downloads and extraction (the caller removes it).

    Raises:
        ConfigError: Not a package, not in the registry, or not a LoRA-only adapter (exit code 2).
        PackageError: The package fails verification.
    """
    source = _fetch_errors_named(ref, pin, ref)
    _require_package(source, ref)
    directory = _fetch_errors_named(ref, source.local_dir, work_dir)
    sha = _check_servable(directory, ref)
    return VerifiedAdapter(
        ref, directory, sha, read_trainer_config(directory), source.name, source.version, source.alias
    )
