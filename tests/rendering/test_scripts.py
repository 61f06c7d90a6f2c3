"""Documents in every script: font coverage, shaping against HarfBuzz, bidi against FriBiDi,
right-to-left alignment and line breaking without spaces."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from deepsynth.configuration import from_dict
from deepsynth.errors import ConfigError
from deepsynth.rendering import fonts, segment
from deepsynth.rendering.chain import resolve_chain
from deepsynth.rendering.config import RenderSettings
from deepsynth.rendering.font_table import DEFAULT_FALLBACK, KNOWN_FONTS
from deepsynth.rendering.layout import wrap
from deepsynth.rendering.renderer import DocumentRenderer, PageRenderer, settings_fingerprint
from deepsynth.rendering.samples import SAMPLES

DEJAVU = str(fonts.SYSTEM_DEJAVU)


def doc(text, **kw):
    return {"id": kw.get("id", "d"), "split": "train", "text": text, "summary": "s", "instruction": None}


def ink(png: bytes) -> np.ndarray:
    """Boolean ink mask of a rendered page."""
    return np.asarray(Image.open(io.BytesIO(png))) < 100  # pages are padded with gray 127


@pytest.fixture(scope="module")
def chain():
    return resolve_chain(None, DEFAULT_FALLBACK)


def test_every_fallback_font_is_installed(chain):
    assert not chain.unavailable, (
        f"fallback fonts not installed: {', '.join(chain.unavailable)}. Run `make install` (as root it "
        "apt-installs fonts-noto-cjk and fonts-noto-core; the pip fontpkg-* packages come with the project)"
    )
    assert len(chain.fonts) == 1 + len(KNOWN_FONTS)


@pytest.mark.parametrize("script", sorted(SAMPLES))
def test_each_script_is_fully_covered_and_rendered(script, chain):
    text = SAMPLES[script]
    missing = chain.missing_glyphs(text)
    assert missing == [], f"{script}: no font in the chain draws {[hex(cp) for cp in missing]} ({chain.unavailable=})"
    (row,) = DocumentRenderer(RenderSettings(modes=["small"]), chain).render(doc(text))
    assert row["missing_glyphs"] == [] and row["chars_rendered"] == len(text) and ink(row["pages"][0]).sum() > 500


def test_characters_no_font_has_are_still_reported(chain):
    (row,) = DocumentRenderer(RenderSettings(modes=["tiny"]), chain).render(doc("漢字 مرحبا \U00013000 \U0001f9ff"))
    assert row["missing_glyphs"] == [0x13000, 0x1F9FF]  # Egyptian hieroglyph, an emoji: in no font of the chain


def _harfbuzz_width(path: str, index: int, size: int, text: str, direction: str) -> tuple[float, int]:
    """HarfBuzz's own shaping of ``text``: advance width in pixels at ``size`` and glyph count."""
    hb = pytest.importorskip("uharfbuzz")
    with open(path, "rb") as f:
        face = hb.Face(f.read(), index)
    font = hb.Font(face)
    buffer = hb.Buffer()
    buffer.add_str(text)
    buffer.guess_segment_properties()
    buffer.direction = direction
    hb.shape(font, buffer)
    return sum(p.x_advance for p in buffer.glyph_positions) * size / face.upem, len(buffer.glyph_infos)


@pytest.mark.parametrize(
    "word, script, joins",
    [
        ("العربية", "arabic", "letters join: contextual forms, not isolated ones"),
        ("क्षत्रिय", "devanagari", "conjuncts: fewer glyphs than characters"),
        ("ஆவணங்களைப்", "tamil", "vowel signs reorder"),
        ("ภาษาไทย", "thai", "marks stack"),
    ],
)
def test_shaping_matches_harfbuzz(word, script, joins, chain):
    renderer = PageRenderer("base", RenderSettings(), chain)
    rtl = script == "arabic"
    runs = list(renderer.shaper.runs(word, [int(rtl)] * len(word)))
    assert len(runs) == 1, "the whole word is one run of one font"
    position = runs[0][1]  # the script's fallback font, or the primary font when it has the script
    assert set(map(ord, word)) <= fonts.coverage(chain.fonts[position].path, chain.fonts[position].index)
    choice = chain.fonts[position]
    expected, glyphs = _harfbuzz_width(choice.path, choice.index, renderer.size, word, "rtl" if rtl else "ltr")
    laid_out = renderer.shaper.widths(word)
    assert laid_out == pytest.approx(expected, abs=1.0), joins
    unshaped = fonts.load_font(choice.path, renderer.size, False, choice.index).getlength(word)
    if script in ("arabic", "devanagari"):
        assert abs(unshaped - expected) > 2 or glyphs < len(word), "the sample would not tell shaping from none"


def _line_strip(png: bytes, line_height: int, margin: int) -> np.ndarray:
    return ink(png)[margin : margin + line_height]


@pytest.mark.parametrize(
    "text",
    [
        "abc שלום עולם 123 def",  # left-to-right paragraph, a right-to-left phrase with a number
        "שלום abc def עולם 2026.",  # right-to-left paragraph, a left-to-right phrase
        "مرحبا بالعالم 12 test",  # Arabic with Arabic-context digits and a Latin word
    ],
)
def test_bidi_order_matches_fribidi(text):
    """One font (DejaVu has Latin, Hebrew and Arabic): our run-by-run drawing equals Raqm/FriBiDi's whole line."""
    settings = RenderSettings(modes=["base"], font=DEJAVU, fallback_fonts=[])
    renderer = DocumentRenderer(settings)
    page = renderer._pages["base"]
    (row,) = renderer.render(doc(text))
    ours = _line_strip(row["pages"][0], page.line_height, page.margin)
    reference = Image.new("L", (1024, page.line_height), 255)
    font = fonts.load_font(DEJAVU, page.size, True)
    rtl = text[0] > "\u0590"
    x = page.margin + page.text_width - font.getlength(text) if rtl else page.margin
    ImageDraw.Draw(reference).text((x, 0), text, font=font, fill=0)
    theirs = np.asarray(reference) < 100
    assert ours.sum() == pytest.approx(theirs.sum(), rel=0.05)
    assert _profile_match(ours, theirs) > 0.9, "ink columns differ from FriBiDi's order"
    naive = Image.new("L", (1024, page.line_height), 255)  # the same characters left to right, unordered
    ImageDraw.Draw(naive).text((x, 0), text, font=fonts.load_font(DEJAVU, page.size), fill=0)
    assert _profile_match(np.asarray(naive) < 100, theirs) < 0.9, "the sample would not tell bidi order from none"


def _profile_match(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two strips' ink per column, smoothed over 5 px (runs may sit a pixel apart)."""
    kernel = np.ones(5)
    pa, pb = (np.convolve(m.sum(0).astype(float), kernel, "same") for m in (a, b))
    return float(np.corrcoef(pa, pb)[0, 1])


@pytest.mark.parametrize("script", ["arabic", "hebrew"])
def test_rtl_paragraph_ink_starts_at_the_right_margin(script):
    renderer = DocumentRenderer(RenderSettings(modes=["small"]))
    page = renderer._pages["small"]
    (row,) = renderer.render(doc(SAMPLES[script] + "\n" + SAMPLES[script].split()[0]))
    lines = ink(row["pages"][0])
    right_edge = page.margin + page.text_width
    for number in range(2):
        strip = lines[page.margin + number * page.line_height : page.margin + (number + 1) * page.line_height]
        columns = np.flatnonzero(strip.any(0))
        assert right_edge - 4 <= columns.max() <= right_edge + 2, f"line {number}: ink ends at {columns.max()}"
    # The last line is one word: right-aligned, so it leaves the left side empty.
    rows = np.flatnonzero(lines[:, page.margin : right_edge].any(1))
    last = lines[rows.max() - page.size // 2 : rows.max() + 1]
    assert np.flatnonzero(last.any(0)).min() > page.mode.page_size[0] // 2


@pytest.mark.parametrize("script", ["chinese_simplified", "japanese", "thai"])
def test_text_without_spaces_breaks_by_width(script):
    text = SAMPLES[script] * 4
    page = PageRenderer("tiny", RenderSettings(), resolve_chain(None, DEFAULT_FALLBACK))
    lines = wrap(text, page.shaper.widths, page.text_width, page.shaper)
    assert len(lines) > 3
    assert "".join(line.text for line in lines).replace(" ", "") == text.replace(" ", ""), "no character lost or added"
    for line in lines:
        assert page.shaper.widths(line.text) <= page.text_width + 1
    for line in lines[1:]:
        assert line.text[0] not in segment.NO_LINE_START
    if script == "thai":
        phrases = set(segment._thai_parser().parse(SAMPLES[script].replace(" ", "")))
        for line in lines[:-1]:
            assert any(line.text.endswith(p) for p in phrases), "Thai breaks at phrase ends"


def test_truncation_is_recorded_for_cjk():
    text = SAMPLES["chinese_simplified"] * 60
    (row,) = DocumentRenderer(RenderSettings(modes=["tiny"], max_pages=1)).render(doc(text))
    assert row["truncated"] and 0 < row["chars_rendered"] < len(text)


def test_chain_is_in_the_settings_and_fingerprint(tmp_path):
    default, none = RenderSettings(), RenderSettings(fallback_fonts=[])
    assert default.fallback_fonts == DEFAULT_FALLBACK
    assert settings_fingerprint(default, resolve_chain(None, default.fallback_fonts)) != settings_fingerprint(
        none, resolve_chain(None, [])
    )
    with pytest.raises(ConfigError, match="unknown font 'noto-klingon'"):
        from_dict(RenderSettings, {"fallback_fonts": ["noto-klingon"]}, source="c.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_chain(None, [str(tmp_path / "none.ttf")])
    reordered = resolve_chain(None, ["noto-sans-cjk-jp", "noto-sans-cjk-sc"])
    assert [c.index for c in reordered.fonts[1:]] == [0, 2]  # Japanese glyph shapes first
