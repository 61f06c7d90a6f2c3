"""Property: for any input file, ingest → render → validate loses nothing and names every rejection."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepsynth.data.config import IngestConfig
from deepsynth.data.generator import render_dataset
from deepsynth.data.ingest import ingest
from deepsynth.rendering.config import RenderSettings
from deepsynth.validation import ValidationConfig, validate_dataset

# Text drawn from the troublemakers: controls, bidi overrides, CJK, Arabic, emoji, whitespace.
ALPHABET = st.sampled_from(list("abc XYZ.,\n\t") + ["\x00", "\x07", "\u202e", "\u2066", "漢", "ع", "😀", "\u00a0", "é"])
TEXT = st.one_of(st.text(ALPHABET, max_size=120), st.just(""), st.just("   "), st.integers(), st.none())
RECORD = st.fixed_dictionaries(
    {"text": TEXT, "summary": TEXT},
    optional={
        "id": st.sampled_from(["a", "b", "c", "", 7]),
        "split": st.sampled_from(["train", "test", "val", "bogus"]),
    },
)
LINE = st.one_of(
    RECORD.map(lambda r: json.dumps(r).encode()),
    st.just(b'{"text": "caf\xe9"}'),
    st.just(b"not json"),
    st.just(b"[1, 2]"),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINE, min_size=1, max_size=6))
def test_nothing_is_lost_and_every_rejection_has_a_reason(lines):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        documents = ingest(IngestConfig(source="file", path=str(path)))
        assert documents.ingested == len(lines)
        rendered = render_dataset(
            documents.rows(), RenderSettings(modes=["tiny"], workers=1, max_pages=1, page_cache=False), Path(tmp) / "r"
        )
        outcome = validate_dataset(
            rendered,
            ValidationConfig(max_missing_glyph_fraction=1.0, max_truncated_fraction=1.0),
            Path(tmp) / "v",
            prior_rejects=documents.rejects,
        )
        report = outcome.report
        assert report.valid + report.quarantined == report.ingested == len(lines)
        assert all(q["reason"] for q in outcome.quarantine)
        for reject in documents.rejects:
            assert reject["file"] == str(path) and reject["row"] >= 1  # names the file and the line
