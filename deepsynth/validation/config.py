"""Knobs of the validate step."""

from __future__ import annotations

from dataclasses import dataclass

from deepsynth.configuration import Section, knob


@dataclass
class ValidationConfig(Section):
    """Thresholds and switches for :func:`deepsynth.validation.validate_dataset`."""

    _section = "validate"

    max_summary_to_text_ratio: float = knob(
        0.5, "a summary may be at most this fraction of its text's length in characters; longer ones are quarantined"
    )
    normalized_leakage_check: bool = knob(
        True,
        "also quarantine held-out documents whose text equals a train text after casefolding, "
        "stripping punctuation and collapsing whitespace (exact copies are always quarantined)",
    )
    train_split: str = knob("train", "name of the training split; every other split is held out for the leakage check")
    max_missing_glyph_fraction: float = knob(
        0.02, "dataset fails if more than this fraction of valid documents has characters the font cannot draw"
    )
    max_truncated_fraction: float = knob(
        0.05, "dataset fails if more than this fraction of valid documents was truncated"
    )
    min_valid_rows: int = knob(1, "dataset fails if fewer valid documents than this remain after quarantine")
    max_image_pixels: int | None = knob(
        None,
        "pages with more pixels than this are quarantined as decompression bombs (null: Pillow's MAX_IMAGE_PIXELS)",
    )

    def __post_init__(self) -> None:
        for name in ("max_summary_to_text_ratio", "max_missing_glyph_fraction", "max_truncated_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.min_valid_rows < 0:
            raise ValueError(f"min_valid_rows must be >= 0, got {self.min_valid_rows}")
        if self.max_image_pixels is not None and self.max_image_pixels <= 0:
            raise ValueError(f"max_image_pixels must be positive, got {self.max_image_pixels}")
