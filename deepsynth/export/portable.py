"""What an export package may say about the machine it was made on: nothing.

The trainer's ``trainer_config.json`` and ``training_metrics.json``, peft's ``adapter_config.json`` and
the text encoder's ``text_encoder.json`` name folders of the training machine (its home, output and cache folders,
a local base model). An export writes them without host paths: folders only the training run used
are dropped (``None``), models are named by profile or hub id, and a base or encoder that exists only
as a local folder is left unnamed, so loading asks for ``base_model=`` instead of following a path
(:func:`deepsynth.package.verify_directory` refuses a package that names one).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from deepsynth.adapter_files import (
    ADAPTER_CONFIG,
    TEXT_ENCODER_DIR,
    TEXT_ENCODER_META,
    TRAINER_CONFIG,
    TRAINING_METRICS,
)
from deepsynth.errors import DeepSynthError

logger = logging.getLogger(__name__)


def is_host_path(value: Any) -> bool:
    """True for a string that names a place on a machine's disk (absolute, ``~``, ``./`` or ``../``)."""
    return isinstance(value, str) and (
        os.path.isabs(value) or value.startswith(("~", "./", "../", "\\")) or value in (".", "..")
    )


def _without_host_paths(value: Any) -> Any:
    if is_host_path(value):
        return None
    if isinstance(value, dict):
        return {k: _without_host_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_host_paths(v) for v in value]
    return value


def portable_base_name(model_name: Any) -> str | None:
    """The base model as a package may name it: a profile or hub id as is, ``None`` for a local folder."""
    return None if model_name is None or is_host_path(model_name) else str(model_name)


def write_portable_configs(package: Path, trainer_config: dict[str, Any]) -> str | None:
    """Rewrite the package's trainer, adapter and text-encoder configs and training metrics without host paths.

    Args:
        package: The package folder being written (its files copied from the trainer output).
        trainer_config: The trainer's ``trainer_config.json`` (``{}`` if it had none).

    Returns:
        The base model's portable name (``None``: a local folder, to be given at load time).

    Raises:
        DeepSynthError: The text encoder's weights are not in the package and it came from a local folder.
    """
    base = portable_base_name(trainer_config.get("model_name"))
    if trainer_config.get("model_name") is not None and base is None:
        logger.warning(
            "the adapter was trained on a local base model folder: the package does not name it "
            "(load it with base_model=<that folder>)"
        )
    if (package / TRAINER_CONFIG).is_file():
        cleaned = _without_host_paths(trainer_config)
        encoder = trainer_config.get("text_encoder_model")
        if is_host_path(encoder):
            cleaned["text_encoder_model"] = _logical_encoder(encoder)
        (package / TRAINER_CONFIG).write_text(json.dumps(cleaned, indent=2, sort_keys=True))
    if (package / TRAINING_METRICS).is_file():
        metrics = json.loads((package / TRAINING_METRICS).read_text())
        (package / TRAINING_METRICS).write_text(json.dumps(_without_host_paths(metrics), indent=2, sort_keys=True))
    if (package / ADAPTER_CONFIG).is_file():
        adapter = json.loads((package / ADAPTER_CONFIG).read_text())
        adapter["base_model_name_or_path"] = base
        (package / ADAPTER_CONFIG).write_text(json.dumps(adapter, indent=2, sort_keys=True))
    _portable_encoder_meta(package / TEXT_ENCODER_DIR)
    return base


def _logical_encoder(source: Any) -> str | None:
    from deepsynth.models.text_encoders import logical_encoder_source

    logical = logical_encoder_source(source)
    return None if is_host_path(logical) else logical


def _portable_encoder_meta(folder: Path) -> None:
    """``text_encoder.json`` with its ``source`` as a logical name (or none, when its weights are in the package)."""
    path = folder / TEXT_ENCODER_META
    if not path.is_file():
        return
    meta = json.loads(path.read_text())
    logical = _logical_encoder(meta.get("source"))
    if logical is None and meta.get("weights_included") is not True:
        raise DeepSynthError(
            f"{path}: the text encoder's weights are not saved with the adapter and it came from a local folder "
            f"({meta.get('source')}): a package cannot carry that dependency; train with the encoder's weights "
            "saved (text_encoder_trainable) or use the bundled or a hub encoder"
        )
    path.write_text(json.dumps({**meta, "source": logical}, indent=2))
