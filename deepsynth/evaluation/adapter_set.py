"""Evaluate every adapter of a multi-adapter run on the same documents; the base model and lead-k once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepsynth.data.rendered import RenderedDocument
from deepsynth.evaluation.result import ADAPTER, VARIANT_PREFIX, EvaluationResult
from deepsynth.evaluation.scoring import evaluate
from deepsynth.inference.generation import GenerationConfig
from deepsynth.inference.loading import load_adapter_model


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
    compares them side by side with the baselines; the base model and lead-k are scored once.

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
    for position, (name, folder) in enumerate(adapters.items()):
        first = position == 0
        loaded = load_adapter_model(folder, home=home)
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
