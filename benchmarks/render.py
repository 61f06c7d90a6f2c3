"""Rendering speed: DeepSynth's renderer vs the original TextToImageConverter, same texts, one run;
and beside it DeepSynth on multilingual documents (every script of the font chain).

    python -m benchmarks.render [--docs 240]

Each side runs in its own fresh process so its peak RSS is its own. Prints pages/s, peak RSS
and the speed ratio; writes benchmarks/results/render.json and the gallery of one page per
script, benchmarks/results/scripts_gallery.png.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time

from benchmarks.common import RESULTS, english_documents, peak_rss_mb, write_result

SIDES = ("legacy", "deepsynth", "multilingual")
GALLERY = RESULTS / "scripts_gallery.png"


def multilingual_documents(count: int, chars: int = 3000) -> list[dict]:
    """``count`` documents of about ``chars`` characters, one script each in turn (samples repeated)."""
    from deepsynth.rendering.samples import SAMPLES

    scripts = sorted(SAMPLES)
    docs = []
    for i in range(count):
        sample = SAMPLES[scripts[i % len(scripts)]]
        text = " ".join([sample] * (chars // len(sample) + 1))[:chars]  # lines fall differently each time
        docs.append({"id": f"doc-{i}", "split": "train", "text": text, "summary": "", "instruction": None})
    return docs


def write_gallery(path=GALLERY) -> None:
    """The top of one small-mode page per script, at full size, two per row (the README shows it)."""
    from PIL import Image, ImageDraw

    from deepsynth.rendering.config import RenderSettings
    from deepsynth.rendering.renderer import DocumentRenderer
    from deepsynth.rendering.samples import SAMPLES

    renderer = DocumentRenderer(RenderSettings(modes=["small"], max_pages=1))
    width, height, label, cols = 640, 100, 14, 2
    rows = -(-len(SAMPLES) // cols)
    sheet = Image.new("L", (cols * width, rows * (height + label)), 200)
    for i, (script, text) in enumerate(sorted(SAMPLES.items())):
        (row,) = renderer.render(
            {"id": script, "split": "-", "text": f"{text} {text}", "summary": "", "instruction": None}
        )
        x, y = (i % cols) * width, (i // cols) * (height + label)
        sheet.paste(Image.open(io.BytesIO(row["pages"][0])).crop((0, 0, width, height)), (x, y + label))
        ImageDraw.Draw(sheet).text((x + 4, y + 1), script, fill=0)
    sheet.save(path, optimize=True)


def _run_side(side: str, docs: int) -> dict:
    """Measure one side (``legacy``, ``deepsynth`` or ``multilingual``) in this process."""
    texts = multilingual_documents(docs) if side == "multilingual" else english_documents(docs)
    if side == "legacy":
        from benchmarks.legacy_renderer import LegacyTextToImageConverter

        converter = LegacyTextToImageConverter()
        start = time.perf_counter()
        pages = sum(1 for doc in texts if converter.to_png(doc["text"]))
        seconds = time.perf_counter() - start
    else:
        from deepsynth.rendering.config import RenderSettings
        from deepsynth.rendering.renderer import render_documents, worker_count

        settings = RenderSettings(modes=["base"], max_pages=None)
        start = time.perf_counter()
        pages = sum(len(row["pages"]) for row in render_documents(texts, settings))
        seconds = time.perf_counter() - start
    return {
        "side": side,
        "documents": docs,
        "pages": pages,
        "seconds": round(seconds, 3),
        "pages_per_s": round(pages / seconds, 2),
        "peak_rss_mb": round(max(peak_rss_mb(), peak_rss_mb(children=True)), 1),
        "workers": 1 if side == "legacy" else worker_count(RenderSettings()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=240, help="documents of ~3,000 characters per side")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(_run_side(args.side, args.docs)))
        return
    sides = {}
    for side in SIDES:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.render", "--side", side, "--docs", str(args.docs)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        sides[side] = json.loads(out.strip().splitlines()[-1])
        s = sides[side]
        print(
            f"{side:>10}: {s['pages']} pages in {s['seconds']} s = {s['pages_per_s']} pages/s, "
            f"peak RSS {s['peak_rss_mb']} MiB, {s['workers']} process(es)"
        )
    ratio = sides["deepsynth"]["pages_per_s"] / sides["legacy"]["pages_per_s"]
    print(
        f"speed ratio deepsynth/legacy: {ratio:.2f}x (goal >= 4x); "
        f"multilingual/English: {sides['multilingual']['pages_per_s'] / sides['deepsynth']['pages_per_s']:.2f}"
    )
    from deepsynth.rendering.samples import SAMPLES

    path = write_result(
        "render",
        {
            "mode": "base",
            "doc_chars": 3000,
            "sides": sides,
            "ratio": round(ratio, 2),
            "goal": 4.0,
            "multilingual_scripts": sorted(SAMPLES),
        },
    )
    write_gallery()
    print(f"wrote {path} and {GALLERY}")


if __name__ == "__main__":
    main()
