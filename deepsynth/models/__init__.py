"""Base model loading, tokenizer, preprocessing, vision features, quantization and text encoders."""

from deepsynth.models.architecture import DEEPSEEK_OCR, DEEPSEEK_OCR_2, TINY, deepseek_ocr_config, tiny_config
from deepsynth.models.loading import ModelSource, build_tiny_model, load_base_model, resolve_model_source
from deepsynth.models.tokenizer import IMAGE_TOKEN, load_tokenizer

__all__ = [
    "DEEPSEEK_OCR",
    "DEEPSEEK_OCR_2",
    "IMAGE_TOKEN",
    "TINY",
    "ModelSource",
    "build_tiny_model",
    "deepseek_ocr_config",
    "load_base_model",
    "load_tokenizer",
    "resolve_model_source",
    "tiny_config",
]
