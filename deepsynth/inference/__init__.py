"""Inference: load an adapter on its base model, generate summaries as in training, and ``Summarizer``."""

from deepsynth.lazy import lazy_exports

_EXPORTS = {
    "GenerationConfig": "deepsynth.inference.generation",
    "GenerationOutput": "deepsynth.inference.generation",
    "generate_summaries": "deepsynth.inference.generation",
    "generate_with_stats": "deepsynth.inference.generation",
    "LoadedModel": "deepsynth.inference.loading",
    "attach_adapter": "deepsynth.inference.loading",
    "load_adapter_model": "deepsynth.inference.loading",
    "load_base_for_inference": "deepsynth.inference.loading",
    "Summarizer": "deepsynth.inference.summarizer",
    "resolve_ref": "deepsynth.inference.summarizer",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
