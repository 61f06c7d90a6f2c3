"""Copy whole folders between local disk and any ZenML artifact store through ``fileio``."""

from __future__ import annotations

import os
from pathlib import Path

from zenml.io import fileio

from deepsynth.process_exit import temp_dir_until_exit


def upload_dir(local: str | os.PathLike, uri: str) -> None:
    """Copy the local folder ``local`` to artifact-store folder ``uri`` (skips if it is the same)."""
    local = Path(local)
    if os.path.exists(uri) and local.resolve() == Path(uri).resolve():
        return
    for root, _dirs, files in os.walk(local):
        target = os.path.join(uri, os.path.relpath(root, local))
        fileio.makedirs(target)
        for name in files:
            fileio.copy(os.path.join(root, name), os.path.join(target, name), overwrite=True)


def local_dir(uri: str) -> Path:
    """A local folder with the contents of ``uri``: itself on a local store, else a downloaded copy."""
    if os.path.isdir(uri):
        return Path(uri)
    target = Path(temp_dir_until_exit("deepsynth-artifact-"))
    for root, _dirs, files in fileio.walk(uri):
        root = root.decode() if isinstance(root, bytes) else str(root)
        rel = os.path.relpath(root, uri)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            name = name.decode() if isinstance(name, bytes) else str(name)
            fileio.copy(os.path.join(root, name), str(target / rel / name), overwrite=True)
    return target
