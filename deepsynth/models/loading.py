"""Load the base model: DeepSeek-OCR (v1 or 2) from the hub or a local directory, or the ``tiny`` profile.

Every path goes through ``from_pretrained`` with ``use_safetensors=True`` and without remote code.
The tiny profile is built once (random weights, fixed seed), saved to a cache directory and then
loaded like any other checkpoint, so the tested loading path is the production one. The build is a
cache entry like any other: its profile file records the key it was built for (profile, seed,
version) and the sha256 of every file, and a build that fails the check is rebuilt with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
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
from deepsynth.integrity import IntegrityError, atomic_directory, check_tree, hash_tree, tree_files
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
    processes (e.g. two data-parallel ranks) never read a half-written model. A directory that
    fails :func:`check_tiny_build` (damaged files, another seed or version) is rebuilt.

    Args:
        path: Target directory; left untouched if it already holds a complete, intact model.
        seed: Seed of the random initialisation.

    Returns:
        ``path``.
    """
    path = Path(path)
    problem = check_tiny_build(path, seed)
    if problem is None:
        return path
    if path.exists():
        logger.warning("%s: the tiny model build %s; it is rebuilt", path, problem)
    try:
        with atomic_directory(path, replace=False) as tmp:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                model = UnlimitedOcrForConditionalGeneration(tiny_config())
            model.save_pretrained(tmp, safe_serialization=True)
            load_tokenizer().save_pretrained(tmp)
            (tmp / PROFILE_FILE).write_text(json.dumps({**_tiny_key(seed), "files": hash_tree(tmp)}))
            if path.exists() and check_tiny_build(path, seed) is not None:  # outdated or damaged
                stale = path.with_name(f".{path.name}-stale-{os.getpid()}")
                path.rename(stale)
                shutil.rmtree(stale, ignore_errors=True)
    except OSError:  # another process finished first
        if check_tiny_build(path, seed) is not None:
            raise
    logger.info("built the tiny model profile in %s", path)
    return path


def _tiny_key(seed: int) -> dict[str, Any]:
    return {"profile": TINY, "seed": seed, "version": TINY_PROFILE_VERSION}


# Builds already hashed in this process, by their files' (name, size, mtime, inode): hashing ~70 MB once is enough.
_CHECKED: dict[Path, tuple] = {}


def check_tiny_build(path: str | os.PathLike, seed: int = TINY_SEED) -> str | None:
    """Why the tiny build in ``path`` cannot be used (``None`` when it is complete and intact).

    Args:
        path: A tiny model directory.
        seed: The seed it must have been built with.

    Returns:
        ``None``, or a short reason: missing, built for another key, a file missing, extra or changed.
    """
    path = Path(path)
    try:
        profile = json.loads((path / PROFILE_FILE).read_text())
    except (OSError, ValueError):
        return "has no readable profile" if path.exists() else "is missing"
    if not isinstance(profile, dict) or {k: profile.get(k) for k in ("profile", "seed", "version")} != _tiny_key(seed):
        return f"was made for another profile, seed or version ({str(profile)[:200]})"
    files = profile.get("files")
    if not isinstance(files, dict):
        return "has no content hashes (an older build)"
    try:
        present = tree_files(path, skip={PROFILE_FILE})
    except IntegrityError as exc:
        return f"cannot be checked ({exc})"
    if set(files) != set(present):
        return f"does not hold the files it was built with (missing or extra: {sorted(set(files) ^ set(present))[:5]})"
    signature = tuple((n, p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino) for n, p in present.items())
    if _CHECKED.get(path) == signature:
        return None
    changed = check_tree(path, files, skip={PROFILE_FILE}).changed
    if changed:
        return f"has files that do not match their sha256 (damaged: {changed[:5]})"
    _CHECKED[path] = signature
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
        return ModelSource(
            model_name, model_name, revision, UnlimitedOcrForConditionalGeneration, deepseek_ocr_config()
        )
    if model_name == DEEPSEEK_OCR_2:
        return ModelSource(
            model_name, model_name, revision, DeepseekOcr2ForConditionalGeneration, deepseek_ocr2_config()
        )
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
