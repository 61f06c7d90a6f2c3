"""Where DeepSynth keeps local state (ZenML store, model profiles, caches)."""

from __future__ import annotations

import os
from pathlib import Path


def deepsynth_home(home: str | os.PathLike | None = None) -> Path:
    """Root of DeepSynth's local state: ``home``, else ``$DEEPSYNTH_HOME``, else ``./.deepsynth``."""
    return Path(home or os.environ.get("DEEPSYNTH_HOME") or Path.cwd() / ".deepsynth").resolve()
