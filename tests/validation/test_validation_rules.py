"""Unit tests of the row-level rules (no great-expectations involved)."""

from __future__ import annotations

import pytest
from support.rendered import bomb_png, png_bytes
from support.tamper import flipped

from deepsynth.configuration import describe, from_dict
from deepsynth.errors import ConfigError
from deepsynth.validation import ValidationConfig, rules


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("Hello,  World!", "hello world"),
        ("  A\tB\nC.  ", "a b c"),
        ("Straße — “quoted”", "strasse quoted"),
        ("...", ""),
    ],
)
def test_normalize_text(raw, normalized):
    assert rules.normalize_text(raw) == normalized


def test_good_page_passes():
    assert rules.check_page(png_bytes(512, 512), (512, 512)) is None


@pytest.mark.parametrize(
    "data, rule, needle",
    [
        (png_bytes(512, 512, noisy=True)[:40_000], "page_decode", "does not decode"),
        (flipped(png_bytes(512, 512, noisy=True)), "page_decode", "does not decode"),
        (b"not a png at all", "page_decode", "does not decode"),
        (b"", "page_decode", "empty image bytes"),
        (bomb_png(), "page_decode", "decompression bomb"),
        (png_bytes(640, 640), "page_size", "image is 640x640, expected 512x512"),
    ],
    ids=["truncated", "corrupt", "garbage", "empty", "bomb", "wrong-size"],
)
def test_bad_pages(data, rule, needle):
    found = rules.check_page(data, (512, 512))
    assert found is not None
    assert found[0] == rule
    assert needle in found[1]


def test_configured_pixel_limit_is_a_bomb_guard():
    rule, reason = rules.check_page(png_bytes(512, 512), (512, 512), max_pixels=1000)
    assert rule == "page_decode" and "exceeds the limit of 1000" in reason


def test_page_sizes_come_from_the_modes_table():
    assert rules.expected_page_size("tiny") == (512, 512)
    assert rules.expected_page_size("small") == (640, 640)
    assert rules.expected_page_size("base") == (1024, 1024)
    assert rules.expected_page_size("large") == (1280, 1280)
    assert rules.expected_page_size("gundam") == (1280, 1920)
    assert rules.expected_page_size("huge") is None


def test_gundam_page_passes():
    assert rules.check_rendering("gundam", [png_bytes(1280, 1920)], 1280, 1920, None) == []


@pytest.mark.parametrize(
    "mode, pages, size, rule, field",
    [
        ("huge", [b"x"], (512, 512), "unknown_mode", "mode"),
        ("tiny", [], (512, 512), "no_pages", "pages"),
        ("tiny", [png_bytes(512, 512)], (640, 640), "page_size", "page_width"),
        ("tiny", [png_bytes(512, 512), b"broken"], (512, 512), "page_decode", "pages"),
    ],
)
def test_check_rendering(mode, pages, size, rule, field):
    (problem,) = rules.check_rendering(mode, pages, *size, None)
    assert (problem.rule, problem.field, problem.mode) == (rule, field, mode)


@pytest.mark.parametrize(
    "text, summary, expected",
    [
        ("", "s", ["empty_text"]),
        ("  \n\t ", "s", ["empty_text"]),
        (None, "s", ["empty_text"]),
        ("some text here", "", ["empty_summary"]),
        ("some text here", None, ["empty_summary"]),
        ("0123456789", "01234", []),  # exactly the ratio is allowed
        ("0123456789", "012345", ["summary_ratio"]),
    ],
)
def test_check_document(text, summary, expected):
    assert [p.rule for p in rules.check_document("id", text, summary, 0.5)] == expected


def test_ratio_reason_is_readable():
    (problem,) = rules.check_document("id", "0123456789", "0123456789", 0.5)
    assert problem.reason == "summary not shorter than text by the configured ratio: 10/10 chars = 1.00 > 0.50"


def test_config_has_help_on_every_knob_and_rejects_bad_values():
    assert all(help_text for _, help_text, _ in describe(ValidationConfig))
    assert from_dict(ValidationConfig, {"max_truncated_fraction": 0}).max_truncated_fraction == 0.0
    with pytest.raises(ConfigError, match="did you mean 'min_valid_rows'"):
        from_dict(ValidationConfig, {"min_valid_row": 3}, source="cfg.yaml")
    with pytest.raises(ConfigError, match="between 0 and 1"):
        from_dict(ValidationConfig, {"max_missing_glyph_fraction": 2.0})


def test_validation_never_imports_zenml_or_gx_eagerly():
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "support" / "loaded_modules.py"
    out = subprocess.run(
        [sys.executable, str(script), "deepsynth.validation"], capture_output=True, text=True, check=True
    ).stdout
    modules = json.loads(out.splitlines()[-1])["modules"]
    assert "zenml" not in modules and "great_expectations" not in modules
