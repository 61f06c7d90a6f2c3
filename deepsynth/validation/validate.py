"""validate_dataset: quarantine bad documents, run the GX suites, write the valid rows.

Two streaming passes over the rendered dataset: the first decodes every page and keeps
only small per-row facts (digests, flags, counts); the second copies the rows of valid
documents into a new dataset. Images are never all in memory.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import deepsynth.validation.rules as rules
from deepsynth.code_points import code_points
from deepsynth.data.rendered import MANIFEST, RenderedDataset, RenderedDatasetWriter
from deepsynth.validation.config import ValidationConfig
from deepsynth.validation.report import ValidationReport, jsonable
from deepsynth.validation.suite import features_frame, run_suites


@dataclass
class _Doc:
    """One document occurrence: the rows (one per mode) that share id, split, text and summary."""

    index: int
    id: str | None
    split: str
    signature: str
    text_digest: str
    norm_digest: str
    features: dict[str, Any]
    modes: list[str] = field(default_factory=list)
    problems: list[rules.Problem] = field(default_factory=list)
    pages: int = 0
    truncated: bool = False
    missing_glyphs: set[int] = field(default_factory=set)

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass
class ValidationOutcome:
    """Result of :func:`validate_dataset`.

    Attributes:
        valid: New rendered dataset holding only the rows of valid documents.
        quarantine: One entry per rejected document (also in ``report.quarantine``).
        report: Counts, check results and dataset-level failures.
    """

    valid: RenderedDataset
    quarantine: list[dict[str, Any]]
    report: ValidationReport

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: the valid dataset's path, the quarantine and the report."""
        return jsonable(
            {"valid_path": str(self.valid.path), "quarantine": self.quarantine, "report": self.report.to_dict()}
        )


def validate_dataset(
    dataset: RenderedDataset,
    config: ValidationConfig,
    out_dir: str | os.PathLike,
    prior_rejects: Iterable[dict[str, Any]] = (),
    *,
    rows_per_shard: int = 32,
) -> ValidationOutcome:
    """Validate a rendered dataset; write its valid rows to ``out_dir``.

    A document rendered in several modes is kept or quarantined as a whole. Row-level
    problems (empty text or summary, duplicate id, summary too long, train/held-out
    leakage, undecodable or wrongly sized pages) quarantine the document; dataset-level
    checks (missing-glyph and truncated fractions, unique ids, enough valid documents)
    set ``report.success``. ``valid + quarantined == ingested`` always holds.

    Args:
        dataset: The rendered dataset to check.
        config: Thresholds and switches.
        out_dir: Directory for the valid dataset: empty, or an earlier output (then replaced).
        prior_rejects: Rows rejected at ingest, each ``{id or row, reason, field, file}``;
            they count as ingested and quarantined.
        rows_per_shard: Shard size of the valid dataset (rows held in memory while writing).

    Returns:
        The valid dataset, the quarantine list and the report.
    """
    valid_path = Path(out_dir)
    if valid_path.resolve() == dataset.path.resolve() or valid_path.resolve() in dataset.path.resolve().parents:
        raise ValueError(f"{valid_path}: output would overwrite the dataset being validated ({dataset.path})")

    docs, row_doc = _scan(dataset, config)
    _check_leakage(docs, config)
    quarantine = [_ingest_entry(r) for r in prior_rejects] + [_entry(d) for d in docs if not d.valid]

    if valid_path.is_dir() and any(valid_path.iterdir()):
        if not (valid_path / MANIFEST).exists():
            raise ValueError(f"{valid_path}: not empty and not an earlier rendered dataset; refusing to replace it")
        shutil.rmtree(valid_path)
    valid_docs = [d for d in docs if d.valid]
    writer = RenderedDatasetWriter(valid_path, dataset.manifest.get("settings", {}), rows_per_shard=rows_per_shard)
    for row_index, row in enumerate(dataset.iter_rows()):
        if docs[row_doc[row_index]].valid:
            writer.write(row)
    ingested = len(docs) + sum(1 for q in quarantine if q["stage"] == "ingest")
    extra = _carried_manifest(dataset.manifest, {d.id for d in valid_docs})
    extra["validation"] = {"source": str(dataset.path), "ingested": ingested, "quarantined": len(quarantine)}
    valid = writer.close(extra=extra)

    checks = run_suites(
        features_frame([d.features for d in docs]), features_frame([d.features for d in valid_docs]), config
    )
    failures = [c.line() for c in checks if c.level == "dataset" and not c.success]
    report = ValidationReport(
        success=not failures,
        ingested=ingested,
        valid=len(valid_docs),
        quarantined=len(quarantine),
        rows_valid=len(valid),
        pages=sum(d.pages for d in valid_docs),
        truncated=sum(d.truncated for d in valid_docs),
        missing_glyphs=[
            {
                "id": d.id,
                "split": d.split,
                "code_points": code_points(d.missing_glyphs),
                "characters": "".join(map(chr, sorted(d.missing_glyphs))),
            }
            for d in valid_docs
            if d.missing_glyphs
        ],
        checks=checks,
        failures=failures,
        quarantine=quarantine,
        config=dataclasses.asdict(config),
    )
    if report.valid + report.quarantined != report.ingested:  # a bug here must never pass silently
        raise RuntimeError(
            f"validation lost documents: {report.valid} valid + {report.quarantined} quarantined "
            f"!= {report.ingested} ingested"
        )
    return ValidationOutcome(valid=valid, quarantine=quarantine, report=report)


_WRITER_KEYS = {"format_version", "settings", "rows", "pages", "rows_per_split", "rows_per_mode", "shards"}


def _carried_manifest(manifest: dict[str, Any], valid_ids: set[Any]) -> dict[str, Any]:
    """The input manifest's extra entries (font, fingerprint...), per-document lists cut to valid ids."""
    extra = {k: v for k, v in manifest.items() if k not in _WRITER_KEYS}
    if isinstance(extra.get("truncated"), list):
        extra["truncated"] = [i for i in extra["truncated"] if i in valid_ids]
    if isinstance(extra.get("missing_glyph_documents"), list):
        extra["missing_glyph_documents"] = [
            d for d in extra["missing_glyph_documents"] if isinstance(d, dict) and d.get("id") in valid_ids
        ]
    return extra


_SCAN_COLUMNS = [
    "id",
    "split",
    "mode",
    "text",
    "summary",
    "pages",
    "page_width",
    "page_height",
    "truncated",
    "missing_glyphs",
]


def _scan(dataset: RenderedDataset, config: ValidationConfig) -> tuple[list[_Doc], list[int]]:
    """First pass: group rows into document occurrences and apply every per-row rule."""
    docs: list[_Doc] = []
    by_id: dict[Any, list[int]] = {}
    row_doc: list[int] = []
    for row in dataset.iter_rows(columns=_SCAN_COLUMNS, batch_size=8):
        doc = _find_or_add(docs, by_id, row, config)
        mode = row["mode"]
        doc.modes.append(mode)
        row_doc.append(doc.index)
        problems = rules.check_rendering(
            mode, row["pages"], row["page_width"], row["page_height"], config.max_image_pixels
        )
        doc.problems += problems
        rules_hit = {p.rule for p in problems}
        doc.features["pages_decode"] &= not rules_hit & {"page_decode", "no_pages"}
        doc.features["page_size_ok"] &= not rules_hit & {"page_size", "unknown_mode"}
        doc.pages += len(row["pages"] or [])
        doc.truncated |= bool(row["truncated"])
        doc.missing_glyphs.update(row["missing_glyphs"] or [])
    for doc in docs:
        doc.features["truncated"] = float(doc.truncated)
        doc.features["has_missing_glyphs"] = float(bool(doc.missing_glyphs))
    return docs, row_doc


def _find_or_add(docs: list[_Doc], by_id: dict[Any, list[int]], row: dict[str, Any], config: ValidationConfig) -> _Doc:
    """The occurrence this row belongs to: same id, split, text and summary, mode not seen yet.

    Anything else with a known id is a new occurrence, quarantined as a duplicate id
    (the first occurrence is kept).
    """
    text, summary = row["text"] or "", row["summary"] or ""
    signature = rules.text_digest("\x00".join((row["split"] or "", text, summary)))
    earlier = by_id.setdefault(row["id"], [])
    for index in earlier:
        if docs[index].signature == signature and row["mode"] not in docs[index].modes:
            return docs[index]
    doc = _Doc(
        index=len(docs),
        id=row["id"],
        split=row["split"],
        signature=signature,
        text_digest=rules.text_digest(text.strip()),
        norm_digest=rules.normalized_digest(text),
        problems=rules.check_document(row["id"], text, summary, config.max_summary_to_text_ratio),
        features={
            "id": row["id"],
            "split": row["split"],
            "text_chars": rules.stripped_len(text),
            "summary_chars": rules.stripped_len(summary),
            "summary_to_text_ratio": rules.summary_ratio(text, summary),
            "leaked": False,
            "pages_decode": True,
            "page_size_ok": True,
        },
    )
    if earlier and row["id"]:
        first = docs[earlier[0]]
        doc.problems.append(
            rules.Problem(
                "duplicate_id",
                "id",
                f"duplicate id {row['id']!r}: first seen in split {first.split!r}, this later copy is quarantined",
            )
        )
    earlier.append(doc.index)
    docs.append(doc)
    return doc


def _check_leakage(docs: list[_Doc], config: ValidationConfig) -> None:
    """Quarantine held-out documents whose text duplicates a train text (exact or normalized)."""
    exact: dict[str, str] = {}
    normalized: dict[str, str] = {}
    empty_norm = rules.text_digest("")
    for doc in docs:
        if doc.split == config.train_split and doc.features["text_chars"]:
            exact.setdefault(doc.text_digest, doc.id)
            if doc.norm_digest != empty_norm:
                normalized.setdefault(doc.norm_digest, doc.id)
    for doc in docs:
        if doc.split == config.train_split or not doc.features["text_chars"]:
            continue
        if doc.text_digest in exact:
            how, train_id = "exact", exact[doc.text_digest]
        elif config.normalized_leakage_check and doc.norm_digest in normalized:
            how, train_id = "normalized", normalized[doc.norm_digest]
        else:
            continue
        doc.features["leaked"] = True
        doc.problems.append(
            rules.Problem(
                "leakage",
                "text",
                f"train/{doc.split} leakage: text duplicates train document {train_id!r} ({how} match)",
            )
        )


def _entry(doc: _Doc) -> dict[str, Any]:
    first = doc.problems[0]
    reasons = list(dict.fromkeys(p.reason for p in doc.problems))
    return {
        "id": doc.id,
        "split": doc.split,
        "mode": first.mode,
        "reason": "; ".join(reasons),
        "field": first.field,
        "rule": first.rule,
        "stage": "validate",
        "modes": doc.modes,
    }


def _ingest_entry(reject: dict[str, Any]) -> dict[str, Any]:
    entry = {
        "id": reject.get("id"),
        "split": reject.get("split"),
        "mode": None,
        "reason": reject.get("reason") or "rejected at ingest",
        "field": reject.get("field"),
        "rule": reject.get("rule", "ingest"),
        "stage": "ingest",
    }
    for key in ("row", "file"):
        if reject.get(key) is not None:
            entry[key] = reject[key]
    return entry
