"""Fetch a registered version's export package and verify it against its manifest and the registry."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from deepsynth.errors import DeepSynthError
from deepsynth.integrity import sha256_file
from deepsynth.package import MANIFEST, PackageError, verify_directory
from deepsynth.registry.versions import ADAPTER_SHA_TAG, MANIFEST_SHA_TAG

#: Name of the pyfunc model's artifact that holds the export package.
PACKAGE_ARTIFACT = "package"

logger = logging.getLogger(__name__)


def verify_registered(package_dir: str | Path, mv: Any) -> dict[str, Any]:
    """Check a downloaded package against its manifest and against the registry version it came from.

    The artifact store can be changed without the registry noticing, manifest and all; the version's
    ``adapter_sha256`` tag (and ``manifest_sha256``, on versions registered since it exists) cannot.

    Args:
        package_dir: The package folder of the downloaded version.
        mv: The MLflow model version.

    Returns:
        The manifest.

    Raises:
        PackageError: The package fails its manifest, or is not the one registered.
    """
    package_dir = Path(package_dir)
    where = f"models:/{mv.name}/{mv.version}"
    manifest = verify_directory(package_dir)
    tags = dict(mv.tags or {})
    registered = tags.get(ADAPTER_SHA_TAG)
    if not registered:
        raise PackageError(
            f"{where}: the registry version has no {ADAPTER_SHA_TAG} tag, so its package cannot be verified"
        )
    if manifest.get("adapter_sha256") != registered:
        held = str(manifest.get("adapter_sha256"))[:64]
        raise PackageError(
            f"{where}: the stored package holds adapter {held}, not the "
            f"{registered} the registry recorded: it was changed after registration"
        )
    if MANIFEST_SHA_TAG not in tags:
        logger.warning(
            "%s was registered without a %s tag: only its adapter weights are checked against the registry",
            where,
            MANIFEST_SHA_TAG,
        )
    elif sha256_file(package_dir / MANIFEST) != tags[MANIFEST_SHA_TAG]:
        raise PackageError(
            f"{where}: the stored package's {MANIFEST} is not the one the registry recorded "
            f"({MANIFEST_SHA_TAG} tag): the package was changed after registration"
        )
    return manifest


def _package_root(local: Path, where: str) -> Path:
    """The export package inside a downloaded version: the pyfunc's data folder.

    Older layouts: the pyfunc's package artifact, else the folder of the shallowest manifest.
    """
    for logged in (local / "data" / PACKAGE_ARTIFACT, local / "artifacts" / PACKAGE_ARTIFACT):
        if (logged / MANIFEST).is_file():
            return logged
    manifests = sorted(local.rglob(MANIFEST), key=lambda p: len(p.parts))
    if not manifests:
        raise DeepSynthError(f"{where} holds no export package (no {MANIFEST})")
    return manifests[0].parent


def fetch_version(mv: Any, dst: Path) -> dict[str, Any]:
    """Download model version ``mv``'s package under ``dst`` and verify it (see :func:`verify_registered`).

    Returns:
        ``{"name", "version", "path", "adapter_sha256"}``; ``path`` is the verified package folder.
    """
    import mlflow

    where = f"models:/{mv.name}/{mv.version}"  # the resolved version, not an alias that may move meanwhile
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=where, dst_path=str(dst)))
    package = _package_root(local, where)
    verify_registered(package, mv)
    return {
        "name": mv.name,
        "version": str(mv.version),
        "path": str(package),
        "adapter_sha256": mv.tags[ADAPTER_SHA_TAG],
    }


def download_version(mv: Any, out_dir: Path) -> dict[str, Any]:
    """Download ``mv``'s package into ``out_dir`` (empty or missing), verified before and after the copy.

    Returns:
        ``{"name", "version", "path", "adapter_sha256"}`` with ``path`` = ``out_dir``.
    """
    with tempfile.TemporaryDirectory(prefix="deepsynth-download-") as tmp:
        fetched = fetch_version(mv, Path(tmp))
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(fetched["path"], out_dir, dirs_exist_ok=True)
    verify_registered(out_dir, mv)
    return {**fetched, "path": str(out_dir)}
