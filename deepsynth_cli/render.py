"""``deepsynth render``: rendering only, no ZenML."""

from __future__ import annotations

from pathlib import Path

import click

from deepsynth_cli.output import emit
from deepsynth_cli.runs import MODES


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the rendered dataset.")
@click.option("--mode", type=click.Choice(MODES), default="base", show_default=True, help="DeepSeek-OCR resolution mode.")
@click.option("--font", default=None, help="TrueType font path, or 'builtin' for Pillow's ASCII-only font.")
@click.option("--max-pages", type=int, default=4, show_default=True, help="Pages per document before truncation (recorded).")
@click.option("--png", "write_png", is_flag=True, help="Also write every page as OUT/png/<id>-<mode>-<page>.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def render(input_path: str, out_dir: str, mode: str, font: str | None, max_pages: int, write_png: bool, as_json: bool) -> None:
    """Render a local JSONL/CSV/Parquet file to page images (no ZenML needed)."""
    from deepsynth.data.ingest import IngestConfig, ingest
    from deepsynth.rendering.dataset import render_dataset
    from deepsynth.rendering.renderer import RenderSettings

    documents = ingest(IngestConfig(source="file", path=input_path))
    settings = RenderSettings(modes=[mode], font=font, max_pages=max_pages)
    rendered = render_dataset(documents.rows(), settings, out_dir, total=documents.table.num_rows)
    if write_png:
        png_dir = Path(out_dir) / "png"
        png_dir.mkdir(parents=True, exist_ok=True)
        for row in rendered.iter_rows(columns=["id", "mode", "pages"]):
            for i, page in enumerate(row["pages"]):
                safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in row["id"])
                (png_dir / f"{safe}-{row['mode']}-{i}.png").write_bytes(page)
    manifest = rendered.manifest
    emit(
        {
            "out": str(rendered.path),
            "documents": documents.table.num_rows,
            "rejected_rows": documents.rejects,
            "pages": manifest["pages"],
            "truncated": manifest["truncated"],
            "missing_glyph_documents": manifest["missing_glyph_documents"],
            "font": manifest["font"]["path"],
        },
        as_json,
    )
