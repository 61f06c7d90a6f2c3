"""Whether progress bars are drawn: one decision for every bar of the project.

Bars redraw themselves with ``\\r``: on a terminal that is a live line, in a pipe or a CI log it is
kilobytes of half-lines. So bars are drawn only when stderr is a terminal, unless the environment
variable ``DEEPSYNTH_PROGRESS`` says otherwise (``1``: always, ``0``: never). The CLI sets it once,
before anything runs (``--progress``), so that steps and launched training ranks, whose stderr may be
wrapped or redirected, follow the same decision.
"""

from __future__ import annotations

import os
import sys
from typing import Any

ENV = "DEEPSYNTH_PROGRESS"


def bars_enabled() -> bool:
    """True when progress bars should be drawn (``DEEPSYNTH_PROGRESS``, else: stderr is a terminal)."""
    forced = os.environ.get(ENV, "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def progress_bar(enabled: bool = True, **kwargs: Any) -> Any:
    """A ``tqdm`` bar, drawn only when ``enabled`` (the caller's own switch) and :func:`bars_enabled`.

    Args:
        enabled: The caller's switch (e.g. the trainer's ``progress_bar`` knob, rank 0 only).
        **kwargs: Passed to ``tqdm`` (``total``, ``desc``, ``unit``, ...).
    """
    from tqdm.auto import tqdm

    return tqdm(disable=not (enabled and bars_enabled()), **kwargs)
