"""Evaluation: ROUGE and output-quality metrics, baselines, ``evaluate`` and the HTML report."""

from deepsynth.lazy import lazy_exports

_EXPORTS = {
    "lead_k": "deepsynth.evaluation.baselines",
    "split_sentences": "deepsynth.evaluation.baselines",
    "EvaluationResult": "deepsynth.evaluation.result",
    "evaluate": "deepsynth.evaluation.scoring",
    "NonFiniteMetricError": "deepsynth.evaluation.metrics",
    "aggregate": "deepsynth.evaluation.metrics",
    "assert_finite": "deepsynth.evaluation.metrics",
    "is_repetitive": "deepsynth.evaluation.metrics",
    "rouge": "deepsynth.evaluation.metrics",
    "score_output": "deepsynth.evaluation.metrics",
    "render_html": "deepsynth.evaluation.report",
    "write_html": "deepsynth.evaluation.report",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
