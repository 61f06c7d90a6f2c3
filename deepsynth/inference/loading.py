"""Load a trained adapter (or a merged export) on its base model for inference.

``PeftModel.from_pretrained`` is the loading path, with no extra arguments for adapters saved in the
layout of :mod:`deepsynth.adapter_layout` (DeepSeek-OCR's original decoder names, which peft 0.21's
key conversion maps exactly). Adapters saved earlier in peft's native layout load with
``key_mapping`` back to the original names. Either way every saved tensor is then compared with the
loaded parameter, so a silently dropped weight can never pass.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from deepsynth.adapter_files import ADAPTER_CONFIG, ADAPTER_WEIGHTS, PROJECTOR_WEIGHTS, TRAINER_CONFIG
from deepsynth.adapter_layout import has_native_decoder_keys, native_key
from deepsynth.errors import DeepSynthError
from deepsynth.models.dtypes import DTYPES
from deepsynth.models.loading import ModelSource, load_base_model
from deepsynth.models.text_encoders import InstructionEncoder, load_text_encoder
from deepsynth.models.vision import ocr_core

logger = logging.getLogger(__name__)

# Native (v5) names of adapters saved before deepsynth.adapter_layout → the original names.
KEY_MAPPING = {r"^model\.language_model\.layers\.": "model.layers."}
_LORA_KEY = re.compile(r"\.(lora_[A-Za-z_]+)\.")


@dataclass
class LoadedModel:
    """A model ready to generate, with everything generation needs beside it.

    Attributes:
        model: A ``PeftModel`` (adapter), or the plain base/merged model.
        tokenizer: DeepSeek-OCR's tokenizer.
        source: Where the base weights came from.
        trainer_config: The training run's config (empty for a bare base model).
        text_encoder: The instruction encoder when the adapter was trained with one.
        adapter_dir: Directory the adapter or merged model was read from.
    """

    model: nn.Module
    tokenizer: Any
    source: ModelSource
    trainer_config: dict[str, Any] = field(default_factory=dict)
    text_encoder: InstructionEncoder | None = None
    adapter_dir: Path | None = None

    @property
    def instruction(self) -> str:
        """Instruction used when a document carries none (the one the adapter was trained with)."""
        return self.trainer_config.get("instruction_prompt") or "Summarize this text:"

    @property
    def max_length(self) -> int:
        """Longest prompt the model was trained on (image positions + instruction)."""
        return int(self.trainer_config.get("max_length") or 2048)

    @property
    def mode(self) -> str | None:
        """Rendering mode the adapter was trained on, if the run fixed one."""
        return self.trainer_config.get("mode")


def read_trainer_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``trainer_config.json`` written beside an adapter, or ``{}``."""
    path = Path(directory) / TRAINER_CONFIG
    return json.loads(path.read_text()) if path.is_file() else {}


def verify_adapter_loaded(model: PeftModel, adapter_dir: str | os.PathLike, adapter_name: str = "default") -> None:
    """Check that every tensor in the adapter file sits, exactly, in the model's parameters.

    Args:
        model: A ``PeftModel`` after ``from_pretrained``.
        adapter_dir: The adapter directory it was loaded from.
        adapter_name: The peft adapter name.

    Raises:
        DeepSynthError: A tensor is missing or differs (e.g. dropped by a key conversion).
    """
    params = dict(model.named_parameters())
    saved = load_file(str(Path(adapter_dir) / ADAPTER_WEIGHTS))
    for key, value in saved.items():
        name = _LORA_KEY.sub(rf".\1.{adapter_name}.", native_key(key), count=1)
        if name not in params or not torch.equal(params[name].detach().cpu(), value.to(params[name].dtype)):
            raise DeepSynthError(f"{adapter_dir}: adapter tensor {key} was not loaded exactly")


def attach_adapter(model: nn.Module, adapter_dir: str | os.PathLike, adapter_name: str = "default") -> PeftModel:
    """Attach the adapter in ``adapter_dir`` as ``adapter_name`` and check every tensor landed exactly.

    A bare base is wrapped with ``PeftModel.from_pretrained``; a ``PeftModel`` that already holds
    adapters (a server's shared base) gets one more with ``load_adapter``. Adapters saved in peft's
    native layout load with :data:`KEY_MAPPING`.

    Args:
        model: The base model the adapter was trained on, bare or already a ``PeftModel``.
        adapter_dir: Directory with ``adapter_config.json`` and ``adapter_model.safetensors``.
        adapter_name: The peft adapter name (unique in ``model``).

    Returns:
        The ``PeftModel`` in eval mode.

    Raises:
        DeepSynthError: No safetensors adapter, an adapter that does not fit the base (rank or target
            modules), or a saved tensor did not land exactly on its parameter (an adapter added beside
            others is removed again).
    """
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / ADAPTER_WEIGHTS).is_file():
        raise DeepSynthError(f"{adapter_dir}: no {ADAPTER_WEIGHTS} (only safetensors adapters are loaded)")
    with safe_open(str(adapter_dir / ADAPTER_WEIGHTS), framework="pt") as handle:
        legacy = has_native_decoder_keys(handle.keys())
    try:
        if not isinstance(model, PeftModel):
            mapping = {"key_mapping": KEY_MAPPING} if legacy else {}
            model = PeftModel.from_pretrained(
                model, str(adapter_dir), adapter_name=adapter_name, is_trainable=False, **mapping
            )
        else:
            # from_pretrained falls back to the model's own key conversion; load_adapter does not, so pass it.
            base = model.get_base_model()
            key_mapping = KEY_MAPPING if legacy else getattr(base, "_checkpoint_conversion_mapping", None) or None
            model.load_adapter(str(adapter_dir), adapter_name=adapter_name, is_trainable=False, key_mapping=key_mapping)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        # A rank that differs from the weights' shapes, or target_modules that match nothing in the base.
        if isinstance(model, PeftModel) and adapter_name in model.peft_config and len(model.peft_config) > 1:
            model.delete_adapter(adapter_name)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise DeepSynthError(f"{adapter_dir}: the adapter does not fit its base model ({first})") from None
    try:
        verify_adapter_loaded(model, adapter_dir, adapter_name)
    except DeepSynthError:
        if len(model.peft_config) > 1:
            model.delete_adapter(adapter_name)
        raise
    return model.eval()


def _load_projector(model: nn.Module, path: Path) -> None:
    tensors = load_file(str(path))
    core = ocr_core(model)
    projector = {
        k.removeprefix("multi_modal_projector."): v
        for k, v in tensors.items()
        if k.startswith("multi_modal_projector.")
    }
    core.multi_modal_projector.load_state_dict(projector, strict=True)
    with torch.no_grad():
        core.image_newline.copy_(tensors["image_newline"])
        core.view_separator.copy_(tensors["view_separator"])


def load_adapter_model(
    adapter_dir: str | os.PathLike,
    *,
    base_model: str | None = None,
    revision: str | None = None,
    home: str | os.PathLike | None = None,
    device: str = "cpu",
    quantized: bool = False,
) -> LoadedModel:
    """Load an adapter directory (trainer output or export) on its base model, or a merged export.

    Args:
        adapter_dir: A directory with ``adapter_config.json`` (LoRA) or ``config.json`` (merged model).
        base_model: Base model name/path; default: the ``model_name`` the adapter was trained on.
        revision: Hub revision of the base; default: the training run's ``model_revision``.
        home: DeepSynth cache root (for the ``tiny`` profile).
        device: ``cpu`` or ``cuda``.
        quantized: For an adapter trained with QLoRA, quantize the base as in training (otherwise the
            base loads unquantized in the training dtype, the better choice where memory allows).

    Returns:
        The :class:`LoadedModel` in eval mode.
    """
    adapter_dir = Path(adapter_dir)
    cfg = read_trainer_config(adapter_dir)
    dtype = DTYPES.get(cfg.get("model_dtype", "float32"), torch.float32)
    if (adapter_dir / ADAPTER_CONFIG).is_file():
        name = base_model or cfg.get("model_name")
        if not name:
            name = json.loads((adapter_dir / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
        if not name:
            raise DeepSynthError(f"{adapter_dir}: cannot tell the base model; pass base_model=")
        quantization = None
        if quantized:  # bitsandbytes is needed for QLoRA only
            from deepsynth.models.quantization import quantization_from_settings

            quantization = quantization_from_settings(cfg)
        base, tokenizer, source = load_base_model(
            name,
            revision or cfg.get("model_revision"),
            dtype=dtype,
            quantization=quantization,
            device=device,
            home=home,
        )
        model = attach_adapter(base, adapter_dir)
    elif (adapter_dir / "config.json").is_file():
        model, tokenizer, source = load_base_model(str(adapter_dir), dtype=dtype, home=home)
    else:
        raise DeepSynthError(f"{adapter_dir}: neither an adapter ({ADAPTER_CONFIG}) nor a model (config.json)")
    return complete_model(model, tokenizer, source, adapter_dir, device)


def complete_model(
    model: nn.Module, tokenizer: Any, source: ModelSource, directory: str | os.PathLike, device: str = "cpu"
) -> LoadedModel:
    """Add what an adapter directory carries beside the LoRA weights: projector, text encoder, config.

    Args:
        model: The base model with the adapter attached (or a merged model).
        tokenizer: Its tokenizer.
        source: Where the base came from.
        directory: The adapter / export directory.
        device: ``cpu`` or ``cuda``.

    Returns:
        The :class:`LoadedModel`, in eval mode on ``device``.
    """
    directory = Path(directory)
    if (directory / PROJECTOR_WEIGHTS).is_file():
        _load_projector(model, directory / PROJECTOR_WEIGHTS)
    model.to(device).eval()
    encoder = load_text_encoder(directory)
    if encoder is not None:
        encoder.to(device)
    return LoadedModel(model, tokenizer, source, read_trainer_config(directory), encoder, directory)


def load_base_for_inference(
    model_name: str,
    revision: str | None = None,
    *,
    home: str | os.PathLike | None = None,
    device: str = "cpu",
    trainer_config: dict[str, Any] | None = None,
) -> LoadedModel:
    """The untrained base model, prompted like an adapter trained with ``trainer_config``.

    Args:
        model_name: Base model name or directory.
        revision: Hub revision.
        home: DeepSynth cache root.
        device: ``cpu`` or ``cuda``.
        trainer_config: Supplies instruction, mode and max_length (the text encoder is not used).

    Returns:
        The :class:`LoadedModel`.
    """
    cfg = dict(trainer_config or {})
    dtype = DTYPES.get(cfg.get("model_dtype", "float32"), torch.float32)
    model, tokenizer, source = load_base_model(model_name, revision, dtype=dtype, home=home)
    return LoadedModel(model.to(device).eval(), tokenizer, source, cfg)
