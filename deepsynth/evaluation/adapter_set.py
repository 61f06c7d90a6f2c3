"""Evaluate every adapter of a multi-adapter run on the same documents; the base model and lead-k once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepsynth.adapter_files import ADAPTER_CONFIG, PROJECTOR_WEIGHTS
from deepsynth.data.rendered import RenderedDocument
from deepsynth.evaluation.result import ADAPTER, VARIANT_PREFIX, EvaluationResult
from deepsynth.evaluation.scoring import evaluate
from deepsynth.inference.generation import GenerationConfig
from deepsynth.inference.loading import (
    LoadedModel,
    attach_adapter,
    complete_model,
    load_adapter_model,
    read_trainer_config,
)


def _base_key(folder: Path) -> tuple[Any, ...] | None:
    """What the base load depends on, or ``None`` when the adapter cannot share a base with others.

    A merged model, or an adapter that also trained the projector (it overwrites base weights), gets a
    base of its own.
    """
    if not (folder / ADAPTER_CONFIG).is_file() or (folder / PROJECTOR_WEIGHTS).is_file():
        return None
    cfg = read_trainer_config(folder)
    if not cfg.get("model_name"):
        return None
    return cfg["model_name"], cfg.get("model_revision"), cfg.get("model_dtype", "float32")


def load_on_shared_base(folder: str | Path, shared: LoadedModel | None, home: Any = None) -> LoadedModel:
    """``folder``'s adapter on ``shared``'s base model (attached beside its adapters and made active).

    Falls back to :func:`load_adapter_model` (a base of its own) when there is no shared base yet or
    the two cannot share one (another base, revision or dtype; a trained projector; a merged model).

    Args:
        folder: The adapter folder.
        shared: An adapter loaded earlier whose base may be reused, or ``None``.
        home: DeepSynth cache root.

    Returns:
        The :class:`LoadedModel`; with a shared base, its ``model`` is ``shared.model`` with this adapter active.
    """
    folder = Path(folder)
    key = _base_key(folder)
    if shared is None or key is None or shared.adapter_dir is None or key != _base_key(shared.adapter_dir):
        return load_adapter_model(folder, home=home)
    name = f"adapter_{len(shared.model.peft_config)}"
    model = attach_adapter(shared.model, folder, name)
    model.set_adapter(name, inference_mode=True)
    device = str(next(model.parameters()).device)
    return complete_model(model, shared.tokenizer, shared.source, folder, device)


def evaluate_adapter_set(
    adapters: dict[str, str | Path],
    documents: Sequence[RenderedDocument],
    *,
    generation: GenerationConfig | None = None,
    k: int = 3,
    include_base: bool = True,
    home: Any = None,
    progress: bool = False,
) -> EvaluationResult:
    """Score each adapter (system ``adapter/<name>``), the untrained base and lead-k on ``documents``.

    Every adapter is scored on the same documents (a per-task adapter too), so the metric table
    compares them side by side with the baselines; the base model and lead-k are scored once. The base
    model is loaded once: every adapter that can share it is attached to it as a peft adapter of its
    own (see :func:`load_on_shared_base`), with the same results as loading each adapter alone.

    Args:
        adapters: Variant name → adapter folder (trainer output or export package).
        documents: The held-out documents.
        generation: Decoding settings shared by every system.
        k: Sentences taken by the lead-k baseline.
        include_base: Also score the untrained base model (with the first adapter switched off).
        home: DeepSynth cache root.
        progress: Show progress bars.
    """
    systems: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = []
    config: dict[str, Any] = {}
    shared: LoadedModel | None = None
    for position, (name, folder) in enumerate(adapters.items()):
        first = position == 0
        loaded = load_on_shared_base(folder, shared, home)
        if shared is None or _base_key(shared.adapter_dir) is None:
            shared = loaded
        result = evaluate(
            loaded, documents, generation=generation, k=k, include_base=include_base and first, progress=progress
        )
        for system, metrics in result.systems.items():
            if system == ADAPTER:
                systems[VARIANT_PREFIX + name] = metrics
            elif first:  # the base model and lead-k, once
                systems[system] = metrics
        for row in result.rows:
            if row["system"] == ADAPTER:
                rows.append({**row, "system": VARIANT_PREFIX + name})
            elif first:
                rows.append(row)
        config = config or {**result.config, "adapters": list(adapters)}
    ordered = {s: systems[s] for s in systems if s.startswith(VARIANT_PREFIX)}
    ordered.update({s: m for s, m in systems.items() if not s.startswith(VARIANT_PREFIX)})
    return EvaluationResult(ordered, rows, config)
