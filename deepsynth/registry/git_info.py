"""The git commit a registration records."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(cwd: str | Path | None = None) -> str:
    """The current git commit of ``cwd`` (``unknown`` outside a repository)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
