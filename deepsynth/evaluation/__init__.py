"""Evaluation: ROUGE and output-quality metrics, baselines, ``evaluate`` and the HTML report."""

from deepsynth.evaluation.baselines import lead_k, split_sentences
from deepsynth.evaluation.evaluate import EvaluationResult, evaluate
from deepsynth.evaluation.metrics import (
    NonFiniteMetricError, aggregate, assert_finite, is_repetitive, rouge, score_output,
)
from deepsynth.evaluation.report import render_html, write_html

__all__ = [
    "EvaluationResult",
    "NonFiniteMetricError",
    "aggregate",
    "assert_finite",
    "evaluate",
    "is_repetitive",
    "lead_k",
    "render_html",
    "rouge",
    "score_output",
    "split_sentences",
    "write_html",
]
