"""Inference: load an adapter on its base model, generate summaries as in training, and ``Summarizer``."""

from deepsynth.inference.generation import GenerationConfig, GenerationOutput, generate_summaries, generate_with_stats
from deepsynth.inference.loading import LoadedModel, attach_adapter, load_adapter_model, load_base_for_inference
from deepsynth.inference.summarizer import Summarizer, resolve_ref

__all__ = [
    "GenerationConfig",
    "GenerationOutput",
    "LoadedModel",
    "Summarizer",
    "attach_adapter",
    "generate_summaries",
    "generate_with_stats",
    "load_adapter_model",
    "load_base_for_inference",
    "resolve_ref",
]
