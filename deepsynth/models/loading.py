"""Load the base model: DeepSeek-OCR (v1 or 2) from the hub or a local directory, or the ``tiny`` profile.

Every path goes through ``from_pretrained`` with ``use_safetensors=True`` and without remote code.
The tiny profile is built once (random weights, fixed seed), saved to a cache directory and then
loaded like any other checkpoint, so the tested loading path is the production one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import (
    DeepseekOcr2ForConditionalGeneration,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    UnlimitedOcrForConditionalGeneration,
)

from deepsynth.errors import ConfigError
from deepsynth.models.architecture import (
    DEEPSEEK_OCR,
    DEEPSEEK_OCR_2,
    TINY,
    TINY_PROFILE_VERSION,
    deepseek_ocr2_config,
    deepseek_ocr_config,
    tiny_config,
)
from deepsynth.models.tokenizer import load_tokenizer
from deepsynth.models.vision import ocr_core
from deepsynth.paths import deepsynth_home

if TYPE_CHECKING:  # bitsandbytes is imported only to quantize (QLoRA)
    from deepsynth.models.quantization import QuantizationSpec

logger = logging.getLogger(__name__)

PROFILE_FILE = "deepsynth_profile.json"
TINY_SEED = 1234


def tiny_model_dir(home: str | os.PathLike | None = None) -> Path:
    """Where the tiny profile is stored: ``<home>/models/tiny``."""
    return deepsynth_home(home) / "models" / TINY


def build_tiny_model(path: str | os.PathLike, seed: int = TINY_SEED) -> Path:
    """Build the tiny profile (random weights from ``seed`` + the real tokenizer) and save it to ``path``.

    The directory appears atomically (written beside it, then renamed), so concurrent
    processes (e.g. two data-parallel ranks) never read a half-written model.

    Args:
        path: Target directory; left untouched if it already holds a complete model.
        seed: Seed of the random initialisation.

    Returns:
        ``path``.
    """
    path = Path(path)
    if _profile_version(path) == TINY_PROFILE_VERSION:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    tmp.chmod(0o755)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = UnlimitedOcrForConditionalGeneration(tiny_config())
        model.save_pretrained(tmp, safe_serialization=True)
        load_tokenizer().save_pretrained(tmp)
        (tmp / PROFILE_FILE).write_text(json.dumps({"profile": TINY, "seed": seed, "version": TINY_PROFILE_VERSION}))
        if path.exists() and _profile_version(path) != TINY_PROFILE_VERSION:  # an outdated build
            stale = path.with_name(f".{path.name}-stale-{os.getpid()}")
            path.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            tmp.rename(path)
        except OSError:  # another process finished first
            if _profile_version(path) != TINY_PROFILE_VERSION:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("built the tiny model profile in %s", path)
    return path


def _profile_version(path: Path) -> int | None:
    try:
        return json.loads((path / PROFILE_FILE).read_text()).get("version")
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class ModelSource:
    """Where a base model comes from and how to instantiate it."""

    name: str
    location: str  # hub id or local directory
    revision: str | None
    model_class: type[PreTrainedModel]
    config: Any  # a config object, or None to read config.json

    @property
    def identity(self) -> str:
        """Stable name of these weights (used to key caches of encoder outputs)."""
        return f"{self.name}@{self.revision or 'local'}"


def resolve_model_source(
    model_name: str, revision: str | None = None, home: str | os.PathLike | None = None
) -> ModelSource:
    """Map a configured model name to a loadable source.

    Args:
        model_name: ``deepseek-ai/DeepSeek-OCR``, ``deepseek-ai/DeepSeek-OCR-2``, ``tiny``, or a local
            directory holding either architecture (a native save or DeepSeek-OCR's original download).
        revision: Hub commit to pin (hub names only).
        home: DeepSynth cache root for the tiny profile.

    Returns:
        The source; raises :class:`ConfigError` for anything else.
    """
    if model_name == TINY:
        path = build_tiny_model(tiny_model_dir(home))
        return ModelSource(TINY, str(path), None, UnlimitedOcrForConditionalGeneration, None)
    if model_name == DEEPSEEK_OCR:
        return ModelSource(model_name, model_name, revision, UnlimitedOcrForConditionalGeneration, deepseek_ocr_config())
    if model_name == DEEPSEEK_OCR_2:
        return ModelSource(model_name, model_name, revision, DeepseekOcr2ForConditionalGeneration, deepseek_ocr2_config())
    path = Path(model_name)
    if (path / "config.json").is_file():
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
        if model_type == "unlimited_ocr":
            return ModelSource(str(path), str(path), None, UnlimitedOcrForConditionalGeneration, None)
        if model_type == "deepseek_ocr2":
            return ModelSource(str(path), str(path), None, DeepseekOcr2ForConditionalGeneration, None)
        if model_type == "deepseek_vl_v2":  # DeepSeek-OCR's own download: its config names remote code
            return ModelSource(str(path), str(path), None, UnlimitedOcrForConditionalGeneration, deepseek_ocr_config())
        raise ConfigError(f"model_name: {path} holds a {model_type!r} model, not DeepSeek-OCR")
    raise ConfigError(
        f"model_name: {model_name!r} is neither {DEEPSEEK_OCR!r}, {DEEPSEEK_OCR_2!r}, {TINY!r} nor a model directory"
    )


def load_base_model(
    model_name: str,
    revision: str | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    quantization: QuantizationSpec | None = None,
    device: torch.device | str | None = None,
    home: str | os.PathLike | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast, ModelSource]:
    """Load the base model and its tokenizer through ``from_pretrained`` (safetensors, no remote code).

    Args:
        model_name: See :func:`resolve_model_source`.
        revision: Pinned hub commit.
        dtype: Weight dtype of the unquantized modules.
        quantization: Quantize the decoder (QLoRA), fused experts included; ``None`` keeps ``dtype``.
            The weights load on the CPU and each decoder layer is quantized as it moves to ``device``.
        device: Where the model goes (``None``: stays on the CPU).
        home: DeepSynth cache root for the tiny profile.

    Returns:
        ``(model, tokenizer, source)``; the model is in eval mode with its vision tower frozen.
    """
    source = resolve_model_source(model_name, revision, home)
    if source.location in (DEEPSEEK_OCR, DEEPSEEK_OCR_2) and not revision:
        logger.warning("loading %s from the hub without a pinned revision", source.location)
    kwargs: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": False, "dtype": dtype}
    if source.config is not None:
        kwargs["config"] = source.config
    if source.revision:
        kwargs["revision"] = source.revision
    model = source.model_class.from_pretrained(source.location, **kwargs)
    if quantization is not None:
        from deepsynth.models.quantization import quantize_decoder

        quantize_decoder(model, ocr_core(model).language_model, quantization, torch.device(device or "cpu"))
    elif device is not None:
        model.to(device)
    tokenizer = load_tokenizer(source.location if Path(source.location).is_dir() else None)
    model.eval()
    return model, tokenizer, source
