"""Property: whatever mix of good and bad rows, valid + quarantined == ingested."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.rendered import bomb_png, make_row, png_bytes, write_dataset
from support.tamper import flipped

from deepsynth.validation import ValidationConfig, validate_dataset

# kind -> rows it produces; each bad kind produces exactly one document to quarantine.
BAD_KINDS = {
    "empty_text": lambda: [make_row(text="  ")],
    "empty_summary": lambda: [make_row(summary="")],
    "long_summary": lambda: [make_row(text="tiny text", summary="a much longer summary than the text")],
    "corrupt_png": lambda: [make_row(pages=[flipped(png_bytes(512, 512, noisy=True))])],
    "truncated_png": lambda: [make_row(pages=[png_bytes(512, 512, noisy=True)[:20_000]])],
    "bomb": lambda: [make_row(pages=[bomb_png()])],
    "wrong_size": lambda: [make_row(pages=[png_bytes(640, 640)])],
    "dup_id": lambda: _dup_id(),
    "leak": lambda: _leak(),
    "multi_one_bad": lambda: _multi(bad=True),
}
GOOD_KINDS = {
    "good_train": lambda: [make_row()],
    "good_test": lambda: [make_row(split="test")],
    "multi_good": lambda: _multi(bad=False),
}


def _dup_id():
    first = make_row()
    return [first, make_row(id=first["id"], split="validation")]


def _leak():
    train = make_row()
    return [train, make_row(split="test", text=train["text"].upper() + "!!")]


def _multi(bad: bool):
    base = make_row(mode="tiny")
    small = make_row(id=base["id"], mode="small", text=base["text"])
    if bad:
        small["pages"] = [b"\x89PNG broken"]
    return [base, small]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(st.sampled_from(sorted(BAD_KINDS) + sorted(GOOD_KINDS)), max_size=12),
    n_prior=st.integers(0, 3),
    shuffle=st.randoms(use_true_random=False),
)
def test_valid_plus_quarantined_is_ingested(kinds, n_prior, shuffle):
    rows = [r for kind in kinds for r in {**BAD_KINDS, **GOOD_KINDS}[kind]()]
    # Leakage and duplicate ids are judged across the dataset, so row order must not matter.
    # (Duplicate ids keep the first occurrence: only shuffle when there is no dup_id.)
    if "dup_id" not in kinds:
        shuffle.shuffle(rows)
    prior = [{"row": i, "file": "in.jsonl", "field": "text", "reason": "bad UTF-8"} for i in range(n_prior)]
    with tempfile.TemporaryDirectory() as tmp:
        ds = write_dataset(Path(tmp) / "rendered", rows, rows_per_shard=3)
        outcome = validate_dataset(ds, ValidationConfig(), Path(tmp) / "out", prior_rejects=prior)
        report = outcome.report
        n_bad = sum(kind in BAD_KINDS for kind in kinds)
        n_docs = sum(2 if k in ("dup_id", "leak") else 1 for k in kinds)
        assert report.valid + report.quarantined == report.ingested == n_docs + n_prior
        assert report.quarantined == n_bad + n_prior
        assert len(outcome.quarantine) == report.quarantined
        assert all(entry["reason"].strip() and entry["field"] for entry in outcome.quarantine)
        kept = list(outcome.valid.iter_rows(columns=["id", "mode"]))
        kept_ids = {r["id"] for r in kept}
        assert len(kept) == report.rows_valid and len(kept_ids) == report.valid
        # No quarantined document leaves a rendering behind (a duplicate's kept first copy shares its id).
        rejected = {q["id"] for q in outcome.quarantine if q["stage"] == "validate" and q["rule"] != "duplicate_id"}
        assert not rejected & kept_ids
