"""``ModelRef``: the one owner of model references (parse, pin to a version and sha256, fetch verified).

A reference is ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` (``NAME``, ``NAME@ALIAS`` and
``NAME/VERSION`` where a registry reference is expected, e.g. ``deepsynth models``), or an export folder
or zip package. Parsing imports nothing heavy; pinning and fetching go through the configured MLflow
registry (imported only then).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deepsynth.errors import ConfigError

PREFIX = "models:/"


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference; after :meth:`pin`, a registry one also holds its version's adapter sha256.

    Attributes:
        text: The reference as given (messages name it).
        name: Registered model name (``None`` for a local package path).
        version: Version number (set by the reference or by :meth:`pin`).
        alias: Alias the reference named, if any (kept after pinning).
        sha256: The pinned version's ``adapter_sha256`` tag (``None`` before :meth:`pin`).
    """

    text: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    sha256: str | None = None

    @classmethod
    def parse(cls, ref: str | os.PathLike | ModelRef) -> ModelRef:
        """A registry reference when ``ref`` starts with ``models:/``, else a local package path."""
        if isinstance(ref, ModelRef):
            return ref
        text = str(ref)
        return cls.registry(text) if text.startswith(PREFIX) else cls(text)

    @classmethod
    def registry(cls, ref: str) -> ModelRef:
        """``NAME``, ``NAME/VERSION``, ``NAME@ALIAS`` (optionally ``models:/``-prefixed) as a registry reference.

        Raises:
            ConfigError: Empty, or a version that is not a number (exit code 2).
        """
        text = ref.removeprefix(PREFIX).strip("/")
        if not text:
            raise ConfigError(f"model reference {ref!r} is empty")
        if "@" in text:
            name, alias = text.split("@", 1)
            return cls(ref, name, None, alias)
        if "/" in text:
            name, version = text.rsplit("/", 1)
            if not version.isdigit():
                raise ConfigError(f"model reference {ref!r}: version must be a number")
            return cls(ref, name, version)
        return cls(ref, text)

    @property
    def is_registry(self) -> bool:
        """True for a registered model, false for a local package path."""
        return self.name is not None

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION`` once a version is known, ``models:/NAME@ALIAS`` before; a path as given."""
        if not self.is_registry:
            return self.text
        if self.version is not None:
            return f"{PREFIX}{self.name}/{self.version}"
        return f"{PREFIX}{self.name}@{self.alias}" if self.alias else f"{PREFIX}{self.name}"

    def version_record(self) -> Any:
        """The MLflow model version this reference names now (an alias is looked up at this call).

        Raises:
            ConfigError: No version or alias named, or an unknown model, version or alias (naming what exists).
        """
        from deepsynth.registry.versions import get_version

        if not (self.version or self.alias):
            raise ConfigError(f"{self.text!r} names no version: use NAME/VERSION or NAME@ALIAS")
        return get_version(self)

    def pin(self) -> ModelRef:
        """This reference with its version (an alias resolved now) and adapter sha256; a path is returned as is."""
        if not self.is_registry:
            return self
        from deepsynth.registry.versions import ADAPTER_SHA_TAG

        mv = self.version_record()
        return replace(self, version=str(mv.version), sha256=(mv.tags or {}).get(ADAPTER_SHA_TAG))

    def _pinned_record(self) -> Any:
        """The version to download: the pinned one (its sha256 must not have changed) or the one named now."""
        from deepsynth.registry.versions import ADAPTER_SHA_TAG

        mv = self.version_record()  # a version, once pinned, wins over the alias
        if self.sha256 is not None and (mv.tags or {}).get(ADAPTER_SHA_TAG) != self.sha256:
            raise ConfigError(f"{self.text}: version {mv.version} no longer holds adapter {self.sha256}")
        return mv

    def fetch(self, dst: str | os.PathLike) -> dict[str, Any]:
        """Download this version's export package under ``dst`` and verify it against its manifest and the registry.

        Returns:
            ``{"name", "version", "path", "adapter_sha256"}``; ``path`` is the verified package folder.
        """
        from deepsynth.registry.fetch import fetch_version

        return fetch_version(self._pinned_record(), Path(dst))

    def download(self, out_dir: str | os.PathLike) -> dict[str, Any]:
        """Download this version's export package into ``out_dir`` (created; must be empty if it exists), verified.

        Raises:
            ConfigError: ``out_dir`` is not an empty folder, or the reference names no known version.
            PackageError: The stored package fails its manifest or is not the one registered (nothing is written).
        """
        from deepsynth.paths import is_empty_folder
        from deepsynth.registry.fetch import download_version

        out_dir = Path(out_dir)
        if not is_empty_folder(out_dir):
            raise ConfigError(f"{out_dir}: not an empty folder (nothing was downloaded)")
        return download_version(self._pinned_record(), out_dir)

    def local_dir(self, work_dir: str | os.PathLike, *, allow_unverified: bool = False) -> Path:
        """The verified package directory to load: downloaded under ``work_dir`` or opened from the local path.

        Args:
            work_dir: Scratch directory for downloads and zip extraction.
            allow_unverified: Load a local folder that has no manifest (nothing in it is verified).

        Raises:
            PackageError: The package fails verification, or a folder has no manifest and no opt-in.
            ConfigError: No such path, or an unknown registered model, version or alias (exit code 2).
        """
        if self.is_registry:
            return Path(self.fetch(Path(work_dir) / "download")["path"])
        from deepsynth.inference.summarizer import resolve_ref

        return resolve_ref(self.text, work_dir, allow_unverified=allow_unverified)


def parse_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``NAME``, ``NAME/VERSION``, ``NAME@ALIAS`` (optionally ``models:/``-prefixed) → ``(name, version, alias)``."""
    parsed = ModelRef.registry(ref)
    return parsed.name or "", parsed.version, parsed.alias


def fetch_package(ref: str, dst: str | os.PathLike) -> dict[str, Any]:
    """Download a version's export package under ``dst`` and verify it (see :meth:`ModelRef.fetch`).

    Args:
        ref: ``NAME/VERSION`` or ``NAME@ALIAS`` (``models:/`` prefix optional).
        dst: Download folder (the package lies somewhere inside it).
    """
    return ModelRef.registry(ref).fetch(dst)


def download(ref: str, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Download a version's export package into ``out_dir``, verified against its manifest and the registry.

    Args:
        ref: ``NAME/VERSION`` or ``NAME@ALIAS`` (``models:/`` prefix optional).
        out_dir: Target directory (created; must be empty if it exists).

    Returns:
        ``{"name", "version", "path", "adapter_sha256"}`` (the sha256 is the registry's, which the package matched).

    Raises:
        PackageError: The stored package fails its manifest or is not the one registered (nothing is written).
    """
    return ModelRef.registry(ref).download(out_dir)
