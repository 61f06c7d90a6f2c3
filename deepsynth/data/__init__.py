"""Documents in (ingest), rendered datasets out, and the job-based dataset-generation API.

The package sits above :mod:`deepsynth.rendering`: only :mod:`deepsynth.data.generator` renders. The
generation API is imported on first use, so the dataset formats (``deepsynth.data.rendered``,
``deepsynth.data.documents``) load without the renderer and Pillow.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__all__ = ["IncrementalDatasetGenerator", "StateManager"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from deepsynth.data import generator

        return getattr(generator, name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        # Submodules as attributes on first use: ZenML loads a step's cache-policy sources
        # (deepsynth.data.generator) from the package in a fresh step process (containers).
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
