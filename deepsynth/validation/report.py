"""The validation report: counts, per-expectation results, quarantine, and the exit-3 error."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from deepsynth.errors import DataValidationError


@dataclass
class CheckResult:
    """One expectation's outcome.

    Attributes:
        name: Short check name, e.g. ``missing_glyph_fraction``.
        level: ``"dataset"`` (a failure fails the run) or ``"row"`` (failures were quarantined).
        expectation: GX expectation type, e.g. ``expect_column_mean_to_be_between``.
        success: Whether GX reported success.
        observed: Observed value (a fraction, a count) or the unexpected count for row checks.
        threshold: Human-readable condition the observed value had to meet.
        unexpected_count: Rows GX found unexpected (row checks; None otherwise).
        description: One sentence saying what is checked.
        details: GX's result dict (JSON-safe).
    """

    name: str
    level: str
    expectation: str
    success: bool
    observed: Any
    threshold: str
    unexpected_count: int | None = None
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """One readable line: name, observed value and threshold."""
        observed = f"{self.observed:.4f}" if isinstance(self.observed, float) else self.observed
        return f"{self.name}: observed {observed}, required {self.threshold} ({self.description})"


@dataclass
class ValidationReport:
    """What validation found; ``ingested == valid + quarantined`` (documents) always.

    Attributes:
        success: False when any dataset-level check failed.
        ingested: Documents seen, including those rejected at ingest.
        valid: Documents kept (every rendering passed).
        quarantined: Documents rejected here or at ingest.
        rows_valid: Rendered rows (document x mode) kept.
        pages: Pages in the valid dataset.
        truncated: Valid documents whose rendering was truncated.
        missing_glyphs: Valid documents with characters the font lacks: ``{id, split, code_points}``.
        checks: Every expectation's result, row-level then dataset-level.
        failures: One readable line per failed dataset-level check.
        quarantine: One entry per rejected document: ``{id, split, mode, reason, field, stage, ...}``.
        config: The thresholds used.
        context: What the report is about (run, data source, modes), shown as its header.
    """

    success: bool
    ingested: int
    valid: int
    quarantined: int
    rows_valid: int = 0
    pages: int = 0
    truncated: int = 0
    missing_glyphs: list[dict[str, Any]] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    def quarantine_by_field(self) -> dict[str, int]:
        """Number of quarantined documents per offending field."""
        counts: dict[str, int] = {}
        for entry in self.quarantine:
            key = entry.get("field") or "?"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (numpy scalars and NaN converted)."""
        return jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        """Inverse of :meth:`to_dict` (for materializers)."""
        data = dict(data)
        data["checks"] = [CheckResult(**c) for c in data.get("checks", [])]
        return cls(**data)


def jsonable(value: Any) -> Any:
    """Recursively turn numpy scalars, tuples and NaN into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def failure_message(report: ValidationReport) -> str:
    """Multi-line explanation of a failed report: each failed check, observed vs threshold."""
    lines = [
        f"data validation failed: {len(report.failures)} dataset-level check(s) failed "
        f"({report.valid} valid of {report.ingested} ingested documents, {report.quarantined} quarantined)"
    ]
    lines += [f"  - {line}" for line in report.failures]
    return "\n".join(lines)


def raise_for_failure(report: ValidationReport) -> None:
    """Raise :class:`DataValidationError` (exit code 3) if a dataset-level check failed.

    Args:
        report: The report returned by ``validate_dataset``.

    Raises:
        DataValidationError: With one line per failed check, observed value vs threshold.
    """
    if not report.success:
        raise DataValidationError(failure_message(report))
