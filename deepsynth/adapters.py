"""A trained adapter as an artifact: the folder the trainer writes, with typed accessors."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsynth.adapter_files import ADAPTER_WEIGHTS, MERGED_WEIGHTS, TRAINER_CONFIG, TRAINING_METRICS
from deepsynth.integrity import sha256_file


@dataclass(frozen=True)
class TrainedAdapter:
    """The trainer's output folder: adapter weights (safetensors), configs, tokenizer, metrics."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if not (self.path / TRAINER_CONFIG).is_file():
            raise FileNotFoundError(f"{self.path}: not a trained adapter (no {TRAINER_CONFIG})")

    @property
    def weights_file(self) -> Path:
        """The adapter's safetensors file (or the full model's when trained without LoRA)."""
        for name in (ADAPTER_WEIGHTS, MERGED_WEIGHTS):
            if (self.path / name).is_file():
                return self.path / name
        raise FileNotFoundError(f"{self.path}: no {ADAPTER_WEIGHTS} or {MERGED_WEIGHTS}")

    @property
    def trainer_config(self) -> dict[str, Any]:
        return json.loads((self.path / TRAINER_CONFIG).read_text())

    @property
    def metrics(self) -> dict[str, Any]:
        path = self.path / TRAINING_METRICS
        return json.loads(path.read_text()) if path.is_file() else {}

    def sha256(self) -> str:
        """sha256 of the weights file: the adapter's identity for registration."""
        return sha256_file(self.weights_file)

    def summary(self) -> dict[str, Any]:
        """Scalars worth showing next to the artifact (JSON-able)."""
        metrics, config = self.metrics, self.trainer_config
        keys = (
            "final_loss",
            "initial_loss",
            "trainable_params",
            "total_params",
            "global_step",
            "samples_per_second",
            "tokens_per_second",
            "mfu",
            "train_runtime_s",
            "resumed_from_step",
        )
        out = {k: metrics[k] for k in keys if isinstance(metrics.get(k), (int, float))}
        out.update(
            base_model=config.get("model_name"),
            base_revision=config.get("model_revision") or "",
            use_qlora=bool(config.get("use_qlora")),
            lora_rank=config.get("lora_rank"),
            weights_sha256=self.sha256(),
        )
        return out

    @classmethod
    def at(cls, path: str | os.PathLike) -> TrainedAdapter:
        return cls(Path(path))
