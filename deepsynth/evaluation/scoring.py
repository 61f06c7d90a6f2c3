"""Evaluate an adapter against the untrained base model and lead-k on the same documents."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from deepsynth.data.rendered import RenderedDocument
from deepsynth.evaluation.baselines import lead_k
from deepsynth.evaluation.metrics import aggregate, score_output
from deepsynth.evaluation.result import ADAPTER, BASE, EvaluationResult
from deepsynth.inference.generation import GenerationConfig, generate_with_stats
from deepsynth.inference.loading import PROJECTOR_WEIGHTS, LoadedModel, load_base_for_inference


def _rows(system: str, docs: Sequence[RenderedDocument], predictions: list[str], latencies: list[float]):
    return [
        {"id": d.id, "system": system, "prediction": p, "reference": d.summary, **score_output(p, d.summary, t)}
        for d, p, t in zip(docs, predictions, latencies)
    ]


@contextlib.contextmanager
def _base_view(adapter: LoadedModel, home: Any) -> Iterator[LoadedModel]:
    """The untrained base: the same weights with LoRA switched off when that is all the adapter changed."""
    changes_more = adapter.text_encoder is not None or (
        adapter.adapter_dir is not None and (adapter.adapter_dir / PROJECTOR_WEIGHTS).is_file()
    )
    if hasattr(adapter.model, "disable_adapter") and not changes_more:
        with adapter.model.disable_adapter():
            yield LoadedModel(adapter.model, adapter.tokenizer, adapter.source, adapter.trainer_config)
        return
    yield load_base_for_inference(
        adapter.source.name,
        adapter.source.revision,
        home=home,
        device=str(next(adapter.model.parameters()).device),
        trainer_config=adapter.trainer_config,
    )


def evaluate(
    adapter: LoadedModel,
    documents: Sequence[RenderedDocument],
    *,
    generation: GenerationConfig | None = None,
    k: int = 3,
    include_base: bool = True,
    base: LoadedModel | None = None,
    home: Any = None,
    progress: bool = False,
) -> EvaluationResult:
    """Score the adapter, the untrained base model and lead-k on the same documents.

    Args:
        adapter: From :func:`deepsynth.inference.load_adapter_model`.
        documents: The held-out split (rendered documents with reference summaries).
        generation: Decoding settings shared by adapter and base.
        k: Sentences taken by the lead-k baseline.
        include_base: Also generate with the untrained base model.
        base: The base model to use (default: the adapter's model with LoRA disabled, or a fresh base
            load when the adapter also trained a projector or text encoder).
        home: DeepSynth cache root (for loading the ``tiny`` base).
        progress: Show progress bars.

    Returns:
        The :class:`EvaluationResult`.
    """
    generation = generation or GenerationConfig()
    docs = list(documents)
    systems: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = []

    outs = generate_with_stats(adapter, docs, generation, progress=progress)
    rows += _rows(ADAPTER, docs, [o.text for o in outs], [o.latency_s for o in outs])
    if include_base:
        context = contextlib.nullcontext(base) if base is not None else _base_view(adapter, home)
        with context as base_model:
            outs = generate_with_stats(base_model, docs, generation, progress=progress)
        rows += _rows(BASE, docs, [o.text for o in outs], [o.latency_s for o in outs])
    lead_name = f"lead_{k}"
    lead, latencies = [], []
    for d in docs:
        began = time.perf_counter()
        lead.append(lead_k(d.text, k))
        latencies.append(time.perf_counter() - began)
    rows += _rows(lead_name, docs, lead, latencies)
    for system in dict.fromkeys(r["system"] for r in rows):
        systems[system] = aggregate([r for r in rows if r["system"] == system])
    config = {
        "generation": vars(generation).copy(),
        "k": k,
        "num_docs": len(docs),
        "base_model": adapter.source.name,
        "base_revision": adapter.source.revision,
    }
    return EvaluationResult(systems, rows, config)
