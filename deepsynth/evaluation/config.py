"""The ``evaluate`` section of a run configuration."""

from __future__ import annotations

from dataclasses import dataclass

from deepsynth.configuration import Section, knob
from deepsynth.inference.config import GenerationConfig


@dataclass
class EvaluateConfig(Section):
    """Which documents are scored and how summaries are decoded."""

    _section = "evaluate"

    split: str = knob("test", "held-out split to score")
    max_documents: int | None = knob(None, "score at most this many documents of the split; null = all")
    lead_k: int = knob(3, "sentences taken by the lead-k extractive baseline")
    include_base: bool = knob(True, "also score the untrained base model")
    report_samples: int = knob(4, "documents shown in the report with page thumbnail and both summaries")
    generation: GenerationConfig = knob(default_factory=GenerationConfig, help="decoding settings")

    def __post_init__(self) -> None:
        if self.lead_k < 1 or (self.max_documents is not None and self.max_documents < 1):
            raise ValueError("evaluate.lead_k and evaluate.max_documents must be at least 1")
