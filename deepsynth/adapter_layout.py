"""The key layout of saved adapters: DeepSeek-OCR's original module names, which plain PEFT loads exactly.

transformers 5 names DeepSeek-OCR's decoder layers ``model.language_model.layers.N``; DeepSeek-OCR's
own checkpoints (and its remote code) name them ``model.layers.N``. peft 0.21 runs every adapter key
through transformers' ``unlimited_ocr`` weight conversion when loading. Its renaming
``(^|model\\.)layers\\. → \\1language_model.layers.`` turns an original name into the native one, but
it also fires inside ``language_model.layers.`` and mangles native names, so an adapter saved the way
peft saves it (native names) loads 0 tensors through a plain ``PeftModel.from_pretrained``.

Adapters are therefore written with the decoder under its original name (:func:`save_adapter`):
a plain ``PeftModel.from_pretrained(UnlimitedOcrForConditionalGeneration.from_pretrained(base), dir)``
then places every tensor, and the names also match DeepSeek-OCR's original module tree. Other
architectures (DeepSeek-OCR-2) keep peft's layout. :func:`native_key` maps a saved key back to the
parameter it belongs to, for the check that every saved tensor landed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from deepsynth.adapter_files import ADAPTER_WEIGHTS

#: Architectures whose adapters are saved under DeepSeek-OCR's original decoder names.
ORIGINAL_LAYOUT_MODEL_TYPES = frozenset({"unlimited_ocr"})
_NATIVE = re.compile(r"(^|\.)model\.language_model\.layers\.")
_ORIGINAL = re.compile(r"(^|\.)model\.layers\.")


def original_key(key: str) -> str:
    """A native (transformers 5) adapter key under DeepSeek-OCR's original decoder name."""
    return _NATIVE.sub(r"\1model.layers.", key, count=1)


def native_key(key: str) -> str:
    """The model's parameter name for a saved adapter key (either layout)."""
    return _ORIGINAL.sub(r"\1model.language_model.layers.", key, count=1)


def has_native_decoder_keys(keys: Any) -> bool:
    """True for an adapter saved in peft's native layout (written before :func:`save_adapter` existed)."""
    return any(_NATIVE.search(key) for key in keys)


def save_adapter(model: Any, out_dir: str | os.PathLike) -> None:
    """``model.save_pretrained`` (safetensors), with the adapter's keys in the layout plain PEFT loads.

    Args:
        model: A ``PeftModel`` (LoRA, QLoRA, or LoRA on fused experts through ``target_parameters``).
        out_dir: Directory for ``adapter_config.json`` and ``adapter_model.safetensors``.
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    model.save_pretrained(out_dir, safe_serialization=True)
    if getattr(getattr(model, "config", None), "model_type", None) not in ORIGINAL_LAYOUT_MODEL_TYPES:
        return
    path = Path(out_dir) / ADAPTER_WEIGHTS
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {original_key(key): handle.get_tensor(key) for key in handle.keys()}
    save_file(tensors, str(path), metadata=metadata)
