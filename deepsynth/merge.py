"""Merge LoRA adapters with peft's ``add_weighted_adapter`` into a new, normal export package.

Each input is resolved and verified like an adapter a server loads
(:func:`deepsynth.serving.sources.fetch_adapter`), attached to one base model,
combined (``linear``, ``ties``, ``dare_linear`` or ``cat``), saved in the project's adapter layout with
the first input's tokenizer, trainer config (plus a ``merged_from`` record) and render settings, and
exported by :func:`deepsynth.export.export_adapter`: the result is summarized, served, evaluated and
registered like a trained adapter.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepsynth.adapter_files import ADAPTER_WEIGHTS, TRAINER_CONFIG
from deepsynth.adapter_layout import ORIGINAL_LAYOUT_MODEL_TYPES, original_key
from deepsynth.errors import ConfigError
from deepsynth.export.exporter import SIDE_FILES, ExportResult, export_adapter
from deepsynth.package import MANIFEST
from deepsynth.paths import is_empty_folder

METHODS = ("linear", "ties", "dare_linear", "cat")
PRUNING = ("ties", "dare_linear")
MERGED = "merged"


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def check_merge(
    refs: Sequence[str],
    weights: Sequence[float] | None,
    out_dir: str | os.PathLike,
    *,
    method: str = "linear",
    density: float | None = None,
    force: bool = False,
) -> list[float]:
    """Check a merge's arguments before anything is loaded; return the weights (default: all 1/N).

    ``out_dir`` must be new or empty; with ``force`` it may hold an earlier export package, which the
    merge replaces. It may never be, hold or lie inside one of the local sources, ``force`` or not.

    Raises:
        ConfigError: Bad arguments (exit code 2), naming what is wrong.
    """
    if len(refs) < 2:
        raise ConfigError(f"merge: give at least two adapters to merge (got {len(refs)})")
    weights = list(weights) if weights is not None else [1.0 / len(refs)] * len(refs)
    if len(weights) != len(refs):
        raise ConfigError(
            f"--weights: {_count(len(refs), 'source')} but {_count(len(weights), 'weight')}; give one weight per source"
        )
    if method not in METHODS:
        raise ConfigError(f"--method: {method!r} is not one of {list(METHODS)}")
    if density is not None and not 0 < density <= 1:
        raise ConfigError(f"--density: {density} is not within (0, 1]")
    if density is not None and method not in PRUNING:
        raise ConfigError(f"--density applies to {' and '.join(PRUNING)} only, not to {method}")
    out = Path(out_dir).resolve()
    for ref in refs:
        if str(ref).startswith("models:/"):
            continue
        source = Path(ref).resolve()
        if not source.exists():
            raise ConfigError(f"{ref}: no such export folder or zip package")
        if out == source or out in source.parents or source in out.parents:
            raise ConfigError(
                f"--out {out_dir}: is, holds or lies inside the source {ref}; a merge never writes over its own input"
            )
    if not is_empty_folder(out):
        if not force:
            raise ConfigError(
                f"--out {out_dir}: not empty; choose a new or empty folder, or --force to replace an earlier export "
                "there"
            )
        if not (out / MANIFEST).is_file():
            raise ConfigError(
                f"--out {out_dir}: holds files that are not an export package; --force only replaces an earlier export"
            )
    return weights


def _save_merged(model: Any, out: Path) -> None:
    """Save the ``merged`` adapter alone, as ``adapter_config.json`` + ``adapter_model.safetensors`` in ``out``."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    staging = out / "_peft"
    model.save_pretrained(staging, selected_adapters=[MERGED], safe_serialization=True)
    for path in (staging / MERGED).iterdir():  # peft puts a non-default adapter in a subfolder
        shutil.move(str(path), out / path.name)
    shutil.rmtree(staging)
    if getattr(model.config, "model_type", None) in ORIGINAL_LAYOUT_MODEL_TYPES:
        with safe_open(str(out / ADAPTER_WEIGHTS), framework="pt") as handle:
            metadata = handle.metadata()
            tensors = {original_key(key): handle.get_tensor(key) for key in handle.keys()}
        save_file(tensors, str(out / ADAPTER_WEIGHTS), metadata=metadata)


def merge_adapters(
    refs: Sequence[str],
    weights: Sequence[float] | None,
    out_dir: str | os.PathLike,
    *,
    method: str = "linear",
    density: float | None = None,
    home: str | os.PathLike | None = None,
    force: bool = False,
) -> ExportResult:
    """Combine the adapters at ``refs`` into one export package at ``out_dir``.

    Args:
        refs: Registry URIs, export directories or zip packages (each verified before loading).
        weights: One weight per adapter (``None``: all 1/N).
        out_dir: Export directory to write: new or empty, or with ``force`` an earlier export (replaced);
            never one of the sources (see :func:`check_merge`).
        method: ``linear`` (same rank needed), ``ties``, ``dare_linear`` or ``cat`` (ranks add up).
        density: Fraction of weights kept by ``ties`` and ``dare_linear`` (default 0.5).
        home: DeepSynth cache root (for the ``tiny`` base).
        force: Replace an earlier export package at ``out_dir``.

    Returns:
        The export of the merged adapter.
    """
    weights = check_merge(refs, weights, out_dir, method=method, density=density, force=force)
    from deepsynth.inference.summarizer import RENDER_SETTINGS_FILE
    from deepsynth.serving.holder import AdapterHolder

    holder = AdapterHolder(home=home)
    with tempfile.TemporaryDirectory(prefix="deepsynth-merge-") as tmp:
        slots = [holder.load(ref, f"input-{i}") for i, ref in enumerate(refs)]
        ranks = {holder.model.peft_config[s.peft_name].r for s in slots}
        if method == "linear" and len(ranks) > 1:
            raise ConfigError(
                f"--method linear needs adapters of one rank (got ranks {sorted(ranks)}); use cat or ties"
            )
        kwargs = {"density": density if density is not None else 0.5} if method in PRUNING else {}
        try:
            holder.model.add_weighted_adapter(
                [s.peft_name for s in slots], [float(w) for w in weights], MERGED, combination_type=method, **kwargs
            )
        except ValueError as exc:  # peft's own refusal (e.g. different target modules)
            raise ConfigError(f"merge ({method}): {exc}") from None
        merged_dir = Path(tmp) / "adapter"
        merged_dir.mkdir()
        _save_merged(holder.model, merged_dir)
        first = slots[0].directory
        for name in SIDE_FILES:
            if (first / name).is_file() and name != TRAINER_CONFIG:
                shutil.copy2(first / name, merged_dir / name)
        config = dict(slots[0].loaded.trainer_config)
        config["lora_rank"] = holder.model.peft_config[MERGED].r
        config["merged_from"] = {
            "method": method,
            "weights": [float(w) for w in weights],
            "density": kwargs.get("density"),
            "sources": [{"ref": s.ref, "version": s.version, "sha256": s.sha256} for s in slots],
        }
        (merged_dir / TRAINER_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
        render = first / RENDER_SETTINGS_FILE
        manifest = json.loads((first / MANIFEST).read_text())
        result = export_adapter(
            merged_dir,
            out_dir,
            create_package=True,
            home=home,
            render_settings=json.loads(render.read_text()) if render.is_file() else None,
            dataset_hash=manifest.get("dataset_hash"),
        )
    holder.close()
    return result
