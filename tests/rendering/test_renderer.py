"""Rendering: page sizes per mode, pixel-width wrapping, pagination, glyph coverage, fonts."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from deepsynth.configuration import from_dict
from deepsynth.data.generator import render_dataset
from deepsynth.errors import ConfigError
from deepsynth.rendering import fonts
from deepsynth.rendering.config import RenderSettings
from deepsynth.rendering.layout import WidthCache, wrap
from deepsynth.rendering.modes import MODES
from deepsynth.rendering.renderer import DocumentRenderer, render_documents

TEXT = " ".join(f"word{i % 37} lorem ipsum dolor" for i in range(400))


def doc(text=TEXT, **kw):
    return {
        "id": kw.pop("id", "d1"),
        "split": "train",
        "text": text,
        "summary": "s",
        "instruction": kw.pop("instruction", None),
    }


def decode(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png))


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_renders_its_page_size(mode):
    (row,) = DocumentRenderer(RenderSettings(modes=[mode], max_pages=None)).render(doc())
    expected = MODES[mode].page_size
    assert (row["page_width"], row["page_height"]) == expected
    for png in row["pages"]:
        image = decode(png)
        assert image.format == "PNG" and image.size == expected
    assert row["chars_rendered"] == row["chars_total"] and not row["truncated"]


def test_gundam_pages_are_exact_tiles():
    assert MODES["gundam"].page_size == (1280, 1920) and 1920 % 640 == 0 and 1280 % 640 == 0


def test_short_page_is_padded_with_upstream_gray():
    (row,) = DocumentRenderer(RenderSettings(modes=["tiny"])).render(doc("A short text."))
    pixels = np.asarray(decode(row["pages"][0]))
    assert pixels[-1].tolist() == [127] * 512  # bottom row: gray padding
    assert pixels[5, 5] == 255  # margin of the text area: white paper
    assert pixels.min() < 100  # ink was drawn


def test_wrap_is_by_pixel_width_not_characters():
    font = fonts.load_font(fonts.resolve_font().path, 20)
    widths = WidthCache(font.getlength)
    narrow, wide = "i" * 30, "W" * 30
    lines = wrap(" ".join([narrow] * 10 + [wide] * 10), widths, 400)
    for line in lines:
        assert font.getlength(line.text) <= 400
    per_line = [len(line.text) for line in lines]
    assert max(per_line) > 2 * min(per_line)  # the same width holds many more 'i' than 'W'


def test_wrap_keeps_every_word_and_splits_overlong_ones():
    font = fonts.load_font(fonts.resolve_font().path, 20)
    text = "alpha beta\n\ngamma " + "x" * 200 + " delta"
    lines = wrap(text, WidthCache(font.getlength), 300)
    assert "".join(line.text.replace(" ", "") for line in lines) == text.replace(" ", "").replace("\n", "")
    assert lines[-1].end == len(text)


def test_pagination_and_recorded_truncation():
    settings = RenderSettings(modes=["tiny"], max_pages=None)
    (full,) = DocumentRenderer(settings).render(doc())
    assert len(full["pages"]) > 2
    (cut,) = DocumentRenderer(RenderSettings(modes=["tiny"], max_pages=2)).render(doc())
    assert len(cut["pages"]) == 2 and cut["truncated"]
    assert 0 < cut["chars_rendered"] < cut["chars_total"] == len(TEXT)
    assert TEXT[: cut["chars_rendered"]].split()[-1] in TEXT  # cut at a word boundary


def test_missing_glyphs_are_reported_with_code_points():
    renderer = DocumentRenderer(RenderSettings(modes=["tiny"], font="builtin", fallback_fonts=[]))
    (row,) = renderer.render(doc("Latin only font: 漢字 and عربي and café"))
    assert 0x6F22 in row["missing_glyphs"] and 0x0639 in row["missing_glyphs"] and ord("é") in row["missing_glyphs"]
    (ok,) = DocumentRenderer(RenderSettings(modes=["tiny"])).render(doc("café naïve"))
    assert ok["missing_glyphs"] == []


def test_arabic_with_a_latin_font_only_is_reported_not_silently_boxed():
    latin = fonts.resolve_font()
    assert 0x0639 not in fonts.coverage(latin.path)
    (row,) = DocumentRenderer(RenderSettings(modes=["tiny"], fallback_fonts=[])).render(doc("مرحبا بالعالم"))
    assert set(row["missing_glyphs"]) >= {0x0645, 0x0631}


def test_font_fallback_chain(tmp_path):
    assert fonts.resolve_font().source == "package" and fonts.resolve_font().name.startswith("NotoSans")
    assert fonts.resolve_font("builtin").source == "builtin"
    dejavu = str(fonts.SYSTEM_DEJAVU)
    assert fonts.resolve_font(dejavu).source == "configured"
    with pytest.raises(ConfigError, match="does not exist"):
        fonts.resolve_font(str(tmp_path / "missing.ttf"))


def test_instruction_drawn_on_first_page_and_kept_as_text():
    plain = DocumentRenderer(RenderSettings(modes=["tiny"])).render(doc("Body text.", instruction="Summarize this:"))[0]
    drawn = DocumentRenderer(RenderSettings(modes=["tiny"], draw_instruction=True)).render(
        doc("Body text.", instruction="Summarize this:")
    )[0]
    assert plain["instruction"] == drawn["instruction"] == "Summarize this:"
    assert plain["pages"][0] != drawn["pages"][0]
    assert plain["doc_hash"] != drawn["doc_hash"]


def test_multi_resolution_gives_one_row_per_mode():
    rows = DocumentRenderer(RenderSettings(modes=["tiny", "base", "gundam"])).render(doc())
    assert [r["mode"] for r in rows] == ["tiny", "base", "gundam"]
    assert len({r["doc_hash"] for r in rows}) == 3


def test_parallel_rendering_equals_sequential():
    docs = [doc(TEXT[: 200 + 50 * i], id=f"d{i}") for i in range(6)]
    one = list(render_documents(docs, RenderSettings(modes=["tiny"], workers=1)))
    two = list(render_documents(docs, RenderSettings(modes=["tiny"], workers=2)))
    assert [r["id"] for r in two] == [f"d{i}" for i in range(6)]
    assert [r["pages"] for r in one] == [r["pages"] for r in two]


def test_render_dataset_writes_shards_and_manifest(tmp_path):
    docs = [doc(TEXT, id=f"d{i}") for i in range(5)] + [doc("漢字 hieroglyphs: \U00013000\U00013001", id="cjk")]
    out = render_dataset(
        docs, RenderSettings(modes=["tiny"], max_pages=1, rows_per_shard=2, workers=1), tmp_path / "r", total=6
    )
    m = out.manifest
    assert len(out) == 6 and len(m["shards"]) == 3
    assert m["truncated"] == [f"d{i}" for i in range(5)]
    assert m["missing_glyph_documents"] == [
        {"id": "cjk", "code_points": ["U+13000", "U+13001"]}
    ]  # no font has them; 漢字 is drawn
    assert m["pages"] == 6 and m["font"]["source"] == "package"
    (cjk,) = [d for d in out.iter_documents() if d.id == "cjk"]
    assert cjk.page_images()[0].size == (512, 512)


def test_unknown_mode_and_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="unknown mode 'huge'"):
        from_dict(RenderSettings, {"modes": ["huge"]}, source="c.yaml")
    with pytest.raises(ConfigError, match="c.yaml: render.max_pages"):
        from_dict(RenderSettings, {"max_pages": 0}, source="c.yaml")
    with pytest.raises(ConfigError, match="unknown key \\(did you mean 'max_pages'"):
        from_dict(RenderSettings, {"max_page": 3}, source="c.yaml")


def test_one_megabyte_document_is_paginated_then_truncated_and_recorded():
    big = ("A long document keeps going. " * 40_000)[:1_000_000]
    (row,) = DocumentRenderer(RenderSettings(modes=["base"], max_pages=3)).render(doc(big))
    assert len(row["pages"]) == 3 and row["truncated"]
    assert row["chars_total"] == 1_000_000 and 0 < row["chars_rendered"] < 20_000


def test_page_cache_renders_only_new_documents(tmp_path):
    settings = RenderSettings(modes=["tiny", "small"], workers=1)
    docs = [doc(TEXT[: 300 + 40 * i], id=f"d{i}") for i in range(6)]
    first = render_dataset(docs[:5], settings, tmp_path / "a", cache_dir=tmp_path / "cache")
    assert first.manifest["rows_from_cache"] == 0
    second = render_dataset(docs, settings, tmp_path / "b", cache_dir=tmp_path / "cache")
    assert second.manifest["rows_from_cache"] == 10  # 5 documents x 2 modes; only d5 was rendered
    assert [d.pages for d in second.iter_documents()][:10] == [d.pages for d in first.iter_documents()]
    uncached = render_dataset(docs, settings, tmp_path / "c")
    assert [d.pages for d in uncached.iter_documents()] == [d.pages for d in second.iter_documents()]
    changed = render_dataset(
        docs,
        RenderSettings(modes=["tiny", "small"], workers=1, font_size=11),
        tmp_path / "d",
        cache_dir=tmp_path / "cache",
    )
    assert changed.manifest["rows_from_cache"] == 0  # new settings, new pages


def test_rendering_workers_start_from_a_script_without_a_main_guard(tmp_path):
    """A snippet pasted into a script (no ``if __name__ == "__main__":``) renders with worker processes
    and ends: spawned workers do not re-run the script."""
    script = tmp_path / "snippet.py"
    script.write_text(
        "from deepsynth.rendering.config import RenderSettings\n"
        "from deepsynth.rendering.renderer import render_documents\n"
        "docs = [{'id': f'd{i}', 'split': 'train', 'text': f'Page {i}. ' * 40, 'summary': 's'} for i in range(4)]\n"
        "rows = list(render_documents(docs, RenderSettings(modes=['tiny'], workers=2)))\n"
        "print('rendered', len(rows))\n"
    )
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "rendered 4"
    assert "freeze_support" not in done.stderr and "bootstrapping phase" not in done.stderr
