"""Moved: :func:`deepsynth.data.generator.render_dataset` (rendering sits below data).

A lazy re-export for the callers not yet updated (steps/render_pages.py, deepsynth_cli/render.py,
deepsynth/rendering/__init__.py); to be deleted once they import deepsynth.data.generator.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "render_dataset":
        from deepsynth.data.generator import render_dataset

        return render_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
