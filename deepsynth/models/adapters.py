"""Load a trained DeepSynth adapter onto a base model.

peft 0.21's ``PeftModel.from_pretrained`` runs adapter keys through transformers' v5 checkpoint
conversion, whose ``unlimited_ocr`` rule ``(^|model\\.)layers\\.`` also matches inside
``language_model.layers.``: every adapter key is renamed wrongly and silently dropped, leaving
an untrained adapter. This loader reads the safetensors file and assigns the weights by name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from peft import PeftConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from torch import nn

from deepsynth.errors import DeepSynthError

ADAPTER_WEIGHTS = "adapter_model.safetensors"
_LORA_KEY = re.compile(r"\.(lora_[A-Za-z_]+)\.")


def load_adapter(base_model: nn.Module, adapter_dir: str | os.PathLike, trainable: bool = False,
                 adapter_name: str = "default") -> PeftModel:
    """Wrap ``base_model`` with the adapter saved in ``adapter_dir`` (exact weights, strict).

    Args:
        base_model: The base model the adapter was trained on (possibly quantized).
        adapter_dir: Directory with ``adapter_config.json`` and ``adapter_model.safetensors``.
        trainable: Keep the adapter trainable (else inference mode, eval).
        adapter_name: peft adapter name.

    Returns:
        The :class:`PeftModel`.

    Raises:
        DeepSynthError: A saved tensor has no matching parameter, or an adapter parameter was not saved.
    """
    adapter_dir = Path(adapter_dir)
    config = PeftConfig.from_pretrained(str(adapter_dir))
    config.inference_mode = not trainable
    model = get_peft_model(base_model, config, adapter_name=adapter_name)
    params = dict(model.named_parameters())
    saved = load_file(str(adapter_dir / ADAPTER_WEIGHTS))
    expected = {n for n in params if f".{adapter_name}." in n and "lora_" in n}
    loaded = set()
    with torch.no_grad():
        for key, value in saved.items():
            name = _LORA_KEY.sub(rf".\1.{adapter_name}.", key, count=1)
            if name not in params:
                raise DeepSynthError(f"{adapter_dir}: saved tensor {key} matches no parameter of the model")
            params[name].copy_(value.to(params[name].dtype))
            loaded.add(name)
    if expected - loaded:
        raise DeepSynthError(f"{adapter_dir}: adapter weights missing for {sorted(expected - loaded)[:3]}")
    if not trainable:
        model.eval()
    return model
