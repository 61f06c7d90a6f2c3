"""The files of a trained adapter folder (the trainer writes them; export, inference and the artifact read them).

Also the one file-hashing helper: an adapter's identity, export manifests, checkpoint indexes
and a local source's revision are all sha256 of file bytes.
"""

from __future__ import annotations

import hashlib
import os

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: The full model's weights, when training ran without LoRA (``full_finetune``).
MERGED_WEIGHTS = "model.safetensors"
PROJECTOR_WEIGHTS = "projector.safetensors"
TRAINER_CONFIG = "trainer_config.json"
TRAINING_METRICS = "training_metrics.json"
TEXT_ENCODER_DIR = "text_encoder"

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
