"""Where DeepSynth keeps local state (ZenML store, model profiles, caches): the home, and how it is found.

The home is ``$DEEPSYNTH_HOME`` when set, else the nearest ``.deepsynth/`` directory in the working
directory or one above it (as git finds ``.git``), else the user-level default
``$XDG_DATA_HOME/deepsynth`` (``~/.local/share/deepsynth``). :func:`find_home` says which and why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The folder name looked for in the working directory and the directories above it.
HOME_DIR = ".deepsynth"
HOME_VARIABLE = "DEEPSYNTH_HOME"


@dataclass(frozen=True)
class HomeChoice:
    """The home in use, why it was chosen, and the directories searched on the way (for messages)."""

    path: Path
    reason: str
    searched: tuple[Path, ...] = ()

    def looked(self) -> str:
        """Where the home was looked for, in order, as one phrase for an error message."""
        if self.reason == HOME_VARIABLE:
            return f"${HOME_VARIABLE} ({self.path})"
        dirs = ", ".join(str(d) for d in self.searched) or "(the working directory is gone)"
        found = f"found {self.path}" if self.reason == "found" else f"then the default {self.path}"
        return f"${HOME_VARIABLE} (unset), {HOME_DIR}/ in {dirs}; {found}"

    def describe(self) -> str:
        """One line for ``-v``: which home is used and why."""
        why = {
            HOME_VARIABLE: f"from ${HOME_VARIABLE}",
            "found": f"the nearest {HOME_DIR}/ at or above {self.searched[0] if self.searched else '.'}",
            "default": f"no ${HOME_VARIABLE} and no {HOME_DIR}/ at or above the working directory: the user-level "
            "default",
        }
        return f"DeepSynth home: {self.path} ({why[self.reason]})"


def default_home() -> Path:
    """The user-level home: ``$XDG_DATA_HOME/deepsynth``, else ``~/.local/share/deepsynth``."""
    root = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return (Path(root) / "deepsynth").resolve()


def find_home(start: str | os.PathLike | None = None) -> HomeChoice:
    """Choose the home: ``$DEEPSYNTH_HOME``, else the nearest ``.deepsynth/`` at or above ``start``, else the default.

    Args:
        start: Where the search up the tree begins (default: the working directory).
    """
    if os.environ.get(HOME_VARIABLE):
        return HomeChoice(Path(os.environ[HOME_VARIABLE]).resolve(), HOME_VARIABLE)
    searched: list[Path] = []
    try:
        here = Path(start or Path.cwd()).resolve()
    except FileNotFoundError:  # the working directory was removed
        return HomeChoice(default_home(), "default")
    for directory in (here, *here.parents):
        searched.append(directory)
        if (directory / HOME_DIR).is_dir():
            return HomeChoice(directory / HOME_DIR, "found", tuple(searched))
    return HomeChoice(default_home(), "default", tuple(searched))


def deepsynth_home(home: str | os.PathLike | None = None) -> Path:
    """Root of DeepSynth's local state: ``home`` when given, else the one :func:`find_home` chooses."""
    return Path(home).resolve() if home else find_home().path


def inference_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Cache root when running an exported model outside a project (never the working directory).

    ``cache_dir``, else ``$DEEPSYNTH_HOME``, else ``$XDG_CACHE_HOME/deepsynth`` (``~/.cache/deepsynth``).
    """
    if cache_dir or os.environ.get(HOME_VARIABLE):
        return deepsynth_home(cache_dir)
    return user_cache_dir().resolve()


def user_cache_dir() -> Path:
    """This user's DeepSynth cache: ``$XDG_CACHE_HOME/deepsynth``, else ``~/.cache/deepsynth``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "deepsynth"


def is_empty_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` does not exist or is an empty directory (a safe place to write a new package)."""
    path = Path(path)
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))
