"""The pyfunc view of an export package: ``predict`` summarizes texts with :class:`Summarizer`.

Registered versions are loaded by :mod:`deepsynth.registry.pyfunc_loader` (verified against the
registry first); :class:`DeepSynthSummarizerModel` is the same behaviour as an ``mlflow.pyfunc.PythonModel``
over a package path the caller has already verified.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from deepsynth.registry.fetch import PACKAGE_ARTIFACT
from deepsynth.registry.refs import ModelRef

__all__ = ["PACKAGE_ARTIFACT", "DeepSynthSummarizerModel", "texts_of"]


def texts_of(model_input: Any) -> list[str]:
    """The texts of a pyfunc input: a DataFrame's ``text`` column (else its first), a list of strings, one string."""
    if isinstance(model_input, str):
        return [model_input]
    if hasattr(model_input, "columns"):
        column = "text" if "text" in model_input.columns else model_input.columns[0]
        return [str(t) for t in model_input[column].tolist()]
    return [str(t) for t in model_input]


class DeepSynthSummarizerModel(mlflow.pyfunc.PythonModel):
    """Pyfunc model: a DataFrame with a ``text`` column (or a list of strings) in, summaries out."""

    def load_context(self, context: Any) -> None:
        """Open the package artifact (manifest-verified) and load the model (base cached in a user cache dir)."""
        from deepsynth.inference.summarizer import Summarizer
        from deepsynth.paths import inference_cache_dir

        package = ModelRef.parse(context.artifacts[PACKAGE_ARTIFACT])
        self.summarizer = Summarizer.load(package, home=inference_cache_dir())

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> list[str]:
        """Summaries of the input texts.

        ``pd.DataFrame`` is a type hint MLflow infers no schema from: it validates nothing (lists
        and strings stay accepted) and does not warn about a missing hint.

        Args:
            context: MLflow context (unused after loading).
            model_input: A DataFrame (``text`` column, else the first), a list of strings or one string.
            params: Unused.

        Returns:
            One summary per text.
        """
        return self.summarizer.summarize_texts(texts_of(model_input))
