"""Validate a rendered dataset: quarantine bad documents, check dataset-level thresholds with GX.

Public API::

    outcome = validate_dataset(dataset, ValidationConfig(), out_dir)
    raise_for_failure(outcome.report)        # DataValidationError (exit 3) on dataset-level failure
    html = render_report_html(outcome.report)
"""

from deepsynth.validation.config import ValidationConfig
from deepsynth.validation.html import render_report_html
from deepsynth.validation.report import CheckResult, ValidationReport, failure_message, raise_for_failure
from deepsynth.validation.validate import ValidationOutcome, validate_dataset

__all__ = [
    "CheckResult",
    "ValidationConfig",
    "ValidationOutcome",
    "ValidationReport",
    "failure_message",
    "raise_for_failure",
    "render_report_html",
    "validate_dataset",
]
