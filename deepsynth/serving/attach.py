"""Attach one more adapter to a shared base under a name of our choosing, verified like every load.

:func:`deepsynth.inference.loading.attach_adapter` wraps a bare base with the adapter named
``default``; a server needs several, each under its own name, on one ``PeftModel``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from peft import PeftModel
from safetensors import safe_open

from deepsynth.adapter_files import ADAPTER_WEIGHTS
from deepsynth.adapter_layout import has_native_decoder_keys
from deepsynth.errors import DeepSynthError
from deepsynth.inference.loading import KEY_MAPPING, verify_adapter_loaded


def attach_named_adapter(model: Any, adapter_dir: str | os.PathLike, adapter_name: str) -> PeftModel:
    """Load the adapter in ``adapter_dir`` as ``adapter_name`` and check every tensor landed exactly.

    Args:
        model: A bare base model (wrapped by this call) or a ``PeftModel`` that already holds adapters.
        adapter_dir: Verified directory with ``adapter_config.json`` and ``adapter_model.safetensors``.
        adapter_name: The peft adapter name (unique in ``model``).

    Returns:
        The ``PeftModel`` in eval mode.

    Raises:
        DeepSynthError: No safetensors adapter, or a saved tensor did not land on its parameter
            (the partly attached adapter is removed again).
    """
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / ADAPTER_WEIGHTS).is_file():
        raise DeepSynthError(f"{adapter_dir}: no {ADAPTER_WEIGHTS} (only safetensors adapters are loaded)")
    with safe_open(str(adapter_dir / ADAPTER_WEIGHTS), framework="pt") as handle:
        legacy = has_native_decoder_keys(handle.keys())
    if not isinstance(model, PeftModel):
        mapping = {"key_mapping": KEY_MAPPING} if legacy else {}
        model = PeftModel.from_pretrained(model, str(adapter_dir), adapter_name=adapter_name, is_trainable=False,
                                          **mapping)
    else:
        # from_pretrained falls back to the model's own key conversion; load_adapter does not, so pass it.
        base = model.get_base_model()
        mapping = KEY_MAPPING if legacy else getattr(base, "_checkpoint_conversion_mapping", None) or None
        model.load_adapter(str(adapter_dir), adapter_name=adapter_name, is_trainable=False, key_mapping=mapping)
    try:
        verify_adapter_loaded(model, adapter_dir, adapter_name)
    except DeepSynthError:
        if len(model.peft_config) > 1:
            model.delete_adapter(adapter_name)
        raise
    return model.eval()
