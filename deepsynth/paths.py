"""Where DeepSynth keeps local state (ZenML store, model profiles, caches)."""

from __future__ import annotations

import os
from pathlib import Path


def deepsynth_home(home: str | os.PathLike | None = None) -> Path:
    """Root of DeepSynth's local state: ``home``, else ``$DEEPSYNTH_HOME``, else ``./.deepsynth``."""
    return Path(home or os.environ.get("DEEPSYNTH_HOME") or Path.cwd() / ".deepsynth").resolve()


def inference_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Cache root when running an exported model outside a project (never the working directory).

    ``cache_dir``, else ``$DEEPSYNTH_HOME``, else ``$XDG_CACHE_HOME/deepsynth`` (``~/.cache/deepsynth``).
    """
    if cache_dir or os.environ.get("DEEPSYNTH_HOME"):
        return deepsynth_home(cache_dir)
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return (Path(root) / "deepsynth").resolve()
