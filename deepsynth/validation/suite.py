"""The great-expectations 1.x suites, run over a pandas frame of per-document features.

Images never enter the frame: rules.py decodes them and the frame carries one boolean per
rendering rule. Row-level expectations run over every document and report how many were
quarantined; dataset-level expectations run over the valid documents and decide success.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from deepsynth.env import QUIET_DEFAULTS, set_defaults
from deepsynth.lazy import deferred_imports
from deepsynth.validation.config import ValidationConfig
from deepsynth.validation.report import CheckResult, jsonable

FEATURE_COLUMNS = (
    "id",
    "split",
    "text_chars",
    "summary_chars",
    "summary_to_text_ratio",
    "leaked",
    "pages_decode",
    "page_size_ok",
    "has_missing_glyphs",
    "truncated",
)


def features_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Frame with :data:`FEATURE_COLUMNS` from per-document feature dicts (typed even when empty)."""
    frame = pd.DataFrame(rows, columns=list(FEATURE_COLUMNS))
    return frame.astype(
        {
            "id": "object",
            "split": "object",
            "text_chars": "int64",
            "summary_chars": "int64",
            "summary_to_text_ratio": "float64",
            "leaked": "bool",
            "pages_decode": "bool",
            "page_size_ok": "bool",
            "has_missing_glyphs": "float64",
            "truncated": "float64",
        }
    )


def _row_expectations(gx, config: ValidationConfig) -> list:
    E = gx.expectations
    ratio = config.max_summary_to_text_ratio
    return [
        E.ExpectColumnValuesToBeBetween(
            column="text_chars",
            min_value=1,
            description="text is not empty",
            meta={"name": "text_not_empty", "threshold": "every text >= 1 char"},
        ),
        E.ExpectColumnValuesToBeBetween(
            column="summary_chars",
            min_value=1,
            description="summary is not empty",
            meta={"name": "summary_not_empty", "threshold": "every summary >= 1 char"},
        ),
        E.ExpectColumnValuesToBeBetween(
            column="summary_to_text_ratio",
            max_value=ratio,
            description="summary is shorter than its text",
            meta={"name": "summary_shorter_than_text", "threshold": f"summary/text chars <= {ratio}"},
        ),
        E.ExpectColumnValuesToBeUnique(
            column="id",
            description="document ids are unique",
            meta={"name": "unique_ids", "threshold": "no repeated id"},
        ),
        E.ExpectColumnValuesToBeInSet(
            column="leaked",
            value_set=[False],
            description="held-out text does not duplicate a train text",
            meta={"name": "no_train_test_leakage", "threshold": "no exact or normalized duplicate"},
        ),
        E.ExpectColumnValuesToBeInSet(
            column="pages_decode",
            value_set=[True],
            description="every page decodes",
            meta={"name": "pages_decode", "threshold": "every page decodes"},
        ),
        E.ExpectColumnValuesToBeInSet(
            column="page_size_ok",
            value_set=[True],
            description="every page has its mode's size",
            meta={"name": "page_size_matches_mode", "threshold": "page size == mode's page size"},
        ),
    ]


def _dataset_expectations(gx, config: ValidationConfig, n_valid: int) -> list:
    E = gx.expectations
    checks = [
        E.ExpectTableRowCountToBeBetween(
            min_value=config.min_valid_rows,
            description="enough valid documents remain",
            meta={"name": "min_valid_documents", "threshold": f">= {config.min_valid_rows}"},
        ),
        E.ExpectColumnValuesToBeUnique(
            column="id",
            description="valid document ids are unique",
            meta={"name": "valid_ids_unique", "threshold": "0 repeated ids"},
        ),
    ]
    if n_valid:  # a mean over no rows is undefined; the row-count check already covers that case
        checks += [
            E.ExpectColumnMeanToBeBetween(
                column="has_missing_glyphs",
                max_value=config.max_missing_glyph_fraction,
                description="fraction of valid documents with characters the font cannot draw",
                meta={"name": "missing_glyph_fraction", "threshold": f"<= {config.max_missing_glyph_fraction}"},
            ),
            E.ExpectColumnMeanToBeBetween(
                column="truncated",
                max_value=config.max_truncated_fraction,
                description="fraction of valid documents truncated by the renderer",
                meta={"name": "truncated_fraction", "threshold": f"<= {config.max_truncated_fraction}"},
            ),
        ]
    return checks


def run_suites(all_docs: pd.DataFrame, valid_docs: pd.DataFrame, config: ValidationConfig) -> list[CheckResult]:
    """Run the row-level suite over every document and the dataset-level suite over valid ones.

    Args:
        all_docs: Features of every document (see :func:`features_frame`).
        valid_docs: Features of the documents that passed every row-level rule.
        config: Thresholds.

    Returns:
        One :class:`CheckResult` per expectation, row-level first.
    """
    set_defaults({"GX_ANALYTICS_ENABLED": QUIET_DEFAULTS["GX_ANALYTICS_ENABLED"]})
    # great_expectations imports altair (charts) and scipy.stats (statistical expectations) at import:
    # 1.3 s of its 3.4 s here, for features these suites do not use (upstream: great_expectations#2984).
    with deferred_imports("altair", "scipy.stats"):
        import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_def = (
        context.data_sources.add_pandas("deepsynth")
        .add_dataframe_asset("documents")
        .add_batch_definition_whole_dataframe("all")
    )
    results = []
    for level, frame, expectations in (
        ("row", all_docs, _row_expectations(gx, config)),
        ("dataset", valid_docs, _dataset_expectations(gx, config, len(valid_docs))),
    ):
        suite = context.suites.add(gx.ExpectationSuite(name=f"deepsynth_{level}", expectations=expectations))
        outcome = batch_def.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
        results += [_check(level, r) for r in outcome.results]
    return results


def _check(level: str, result) -> CheckResult:
    cfg = result.expectation_config
    details = jsonable(dict(result.result or {}))
    unexpected = details.get("unexpected_count")
    observed = details.get("observed_value", unexpected)
    if result.exception_info and result.exception_info.get("raised_exception"):
        observed = f"error: {result.exception_info.get('exception_message')}"
    return CheckResult(
        name=cfg.meta["name"],
        level=level,
        expectation=cfg.type,
        success=bool(result.success),
        observed=observed,
        threshold=cfg.meta["threshold"],
        unexpected_count=unexpected,
        description=cfg.description or "",
        details=details,
    )
