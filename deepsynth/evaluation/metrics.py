"""Summary metrics: ROUGE-1/2/L (``rouge-score``), length, empty outputs, repetition loops, latency."""

from __future__ import annotations

import math
import statistics
from functools import lru_cache
from typing import Any

from deepsynth.errors import DeepSynthError

ROUGE_KEYS = {"rouge_1": "rouge1", "rouge_2": "rouge2", "rouge_l": "rougeL"}
SYSTEM_METRICS = ("rouge_1", "rouge_2", "rouge_l", "mean_length", "empty_rate", "repetition_rate", "latency_s")


class NonFiniteMetricError(DeepSynthError):
    """A metric is NaN or infinite, so no gate may use it."""


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_KEYS.values()), use_stemmer=True)


def rouge(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L F1 of one prediction against one reference (``rouge_1``, ``rouge_2``, ``rouge_l``)."""
    scores = _scorer().score(reference, prediction)
    return {ours: float(scores[theirs].fmeasure) for ours, theirs in ROUGE_KEYS.items()}


def _units(text: str) -> list[str]:
    words = text.split()
    return words if len(words) > 1 else list(text.replace(" ", ""))  # scripts without spaces: characters


def is_repetitive(text: str, max_n: int = 4, min_repeats: int = 3) -> bool:
    """Whether ``text`` is stuck in a loop: some n-gram (n ≤ ``max_n``) repeats back to back ``min_repeats`` times.

    ``"the cat the cat the cat"`` loops (a 2-gram three times in a row); a word that merely recurs
    across a sentence does not.

    Args:
        text: A generated summary.
        max_n: Longest n-gram checked (words; characters for text without spaces).
        min_repeats: Consecutive occurrences that count as a loop.

    Returns:
        ``True`` for a loop.
    """
    units = _units(text)
    for n in range(1, max_n + 1):
        for start in range(0, len(units) - n * min_repeats + 1):
            gram = units[start : start + n]
            if all(units[start + k * n : start + (k + 1) * n] == gram for k in range(1, min_repeats)):
                return True
    return False


def score_output(prediction: str, reference: str, latency_s: float) -> dict[str, Any]:
    """Per-document metric row: ROUGE, length in words, empty and loop flags, latency."""
    return {
        **rouge(prediction, reference),
        "length": len(prediction.split()),
        "empty": not prediction.strip(),
        "repetitive": is_repetitive(prediction),
        "latency_s": float(latency_s),
    }


def aggregate(rows: list[dict[str, Any]]) -> dict[str, float]:
    """System-level metrics from per-document rows (means; rates in [0, 1]).

    Args:
        rows: Rows of :func:`score_output`.

    Returns:
        ``rouge_1``, ``rouge_2``, ``rouge_l``, ``mean_length``, ``empty_rate``, ``repetition_rate``, ``latency_s``
        (mean seconds per document), ``num_docs``. Empty ``rows`` give NaN means (caught by :func:`assert_finite`).
    """

    def mean(key: str) -> float:
        values = [float(r[key]) for r in rows]
        return statistics.fmean(values) if values else float("nan")

    out = {key: mean(key) for key in ROUGE_KEYS}
    out.update(
        mean_length=mean("length"),
        empty_rate=mean("empty"),
        repetition_rate=mean("repetitive"),
        latency_s=mean("latency_s"),
        num_docs=float(len(rows)),
    )
    return out


def assert_finite(metrics: dict[str, Any], context: str = "metrics") -> None:
    """Raise if any numeric metric is NaN or infinite (nested dicts are checked too).

    Args:
        metrics: Flat or per-system (``{system: {name: value}}``) metrics.
        context: Names the metrics in the message.

    Raises:
        NonFiniteMetricError: Lists every offending ``name=value``.
    """
    bad = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isfinite(value):
            bad.append(f"{prefix}={value}")
        elif value is None:
            bad.append(f"{prefix}=None")

    walk("", metrics)
    if bad:
        raise NonFiniteMetricError(f"{context}: non-finite values {', '.join(bad)}; refusing to use them in a gate")
