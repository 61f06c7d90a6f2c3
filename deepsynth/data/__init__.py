"""Documents in (ingest), rendered datasets out, and the job-based dataset-generation API.

The package sits above :mod:`deepsynth.rendering`: only :mod:`deepsynth.data.generator` renders. The
generation API is imported on first use, so the dataset formats (``deepsynth.data.rendered``,
``deepsynth.data.documents``) load without the renderer and Pillow.
"""

from __future__ import annotations

from typing import Any

__all__ = ["IncrementalDatasetGenerator", "StateManager"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from deepsynth.data import generator

        return getattr(generator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
