"""Models-from-code entry point that MLflow runs when it loads a registered DeepSynth model."""

import mlflow.models

from deepsynth.registry.pyfunc_model import DeepSynthSummarizerModel

mlflow.models.set_model(DeepSynthSummarizerModel())
