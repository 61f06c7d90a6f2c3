"""Decoding settings (the ``generation`` section of a config); importing this is cheap."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from deepsynth.configuration import Section, from_dict, knob
from deepsynth.errors import ConfigError


@dataclass
class GenerationConfig(Section):
    """How summaries are decoded (the ``generation`` section of a config)."""

    _section = "generation"

    max_new_tokens: int = knob(128, "longest generated summary in tokens")
    no_repeat_ngram_size: int = knob(0, "forbid repeating any n-gram of this size (0: off)")
    batch_size: int = knob(4, "documents decoded together")
    greedy: bool = knob(True, "greedy decoding (false: sample with temperature / top_p)")
    temperature: float = knob(1.0, "sampling temperature (greedy: false only)")
    top_p: float = knob(1.0, "nucleus sampling mass (greedy: false only)")
    seed: int = knob(0, "sampling seed")

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.batch_size < 1 or self.no_repeat_ngram_size < 0:
            raise ConfigError("generation: max_new_tokens and batch_size must be >= 1, no_repeat_ngram_size >= 0")

    def to_dict(self) -> dict[str, Any]:
        """The settings as recorded in an export package's manifest."""
        return asdict(self)

    @classmethod
    def from_recorded(cls, values: Mapping[str, Any] | None, source: str | None = None) -> GenerationConfig:
        """Settings recorded by :meth:`to_dict` (defaults for what is missing); unknown keys are errors."""
        return from_dict(cls, values, source=source, prefix="generation")
