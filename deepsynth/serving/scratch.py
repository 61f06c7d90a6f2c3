"""Where a server downloads and extracts packages: ``<home>/serve-tmp/<pid>-*``, so a killed server's leftovers
are found and removed by the next server that starts (a ``kill -9`` skips every clean-up of its own)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from deepsynth.env import process_alive
from deepsynth.paths import deepsynth_home

SCRATCH_DIR = "serve-tmp"

logger = logging.getLogger(__name__)


def scratch_root(home: str | os.PathLike | None = None) -> Path:
    """``<home>/serve-tmp`` (created), after removing what servers no longer running left there."""
    root = deepsynth_home(home) / SCRATCH_DIR
    root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        pid = entry.name.split("-", 1)[0]
        if entry.is_dir() and pid.isdigit() and not process_alive(int(pid)):
            logger.info("removing %s, left by server process %s that is gone", entry, pid)
            shutil.rmtree(entry, ignore_errors=True)
    return root


def scratch_dir(root: Path) -> str:
    """A new folder under ``root`` named after this process (see :func:`scratch_root`)."""
    return tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root)
