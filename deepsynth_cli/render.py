"""``deepsynth render``: rendering only, no ZenML."""

from __future__ import annotations

from pathlib import Path

import click

from deepsynth.errors import InputError, Location
from deepsynth_cli.output import Command, emit, json_option
from deepsynth_cli.runs import config_options, file_source_config, file_source_options


def write_pngs(rendered, png_dir: Path) -> Path:
    """Write every page of ``rendered`` under ``png_dir`` with safe, unique names; return the index's path."""
    from deepsynth.data.page_files import write_page_pngs

    return write_page_pngs(rendered.iter_rows(columns=["id", "mode", "pages"]), png_dir)


@click.command(cls=Command)
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the rendered dataset."
)
@config_options()
@file_source_options
@click.option(
    "--font",
    default=None,
    help="TrueType font path, or 'builtin' for Pillow's ASCII-only font [default: the fallback chain].",
)
@click.option(
    "--max-pages", type=int, default=None, help="Pages per document before truncation (recorded) [default: 4]."
)
@click.option(
    "--png",
    "write_png",
    is_flag=True,
    help="Also write every page as OUT/png/<id>-<mode>-<page>.png (an id that is no safe file name gets a "
    "sanitized stem and a hash of the id); OUT/png/index.json maps each file to its id, mode and page.",
)
@json_option
def render(
    input_path: str,
    out_dir: str,
    config_path: str | None,
    overrides: tuple[str, ...],
    mode: str | None,
    text_column: str | None,
    summary_column: str | None,
    font: str | None,
    max_pages: int | None,
    write_png: bool,
    as_json: bool,
) -> None:
    """Render a local JSONL/CSV/Parquet file to page images (no ZenML needed).

    The render and ingest sections come from --config and --set like `deepsynth run`. Exits 2
    when no row could be read (every row rejected).
    """
    from deepsynth.data.generator import render_dataset
    from pipelines.config_checks import read_documents

    extra = {"render.font": ("--font", font), "render.max_pages": ("--max-pages", max_pages)}
    config, source = file_source_config(
        input_path, config_path, overrides, mode, text_column, summary_column, "render", extra, check=False
    )
    documents = read_documents(config, source)
    if documents.table.num_rows == 0:
        reasons = "; ".join(r["reason"] for r in documents.rejects[:3]) or "the file holds no rows"
        raise InputError(
            Location(input_path), f"no document could be read ({len(documents.rejects)} rejected: {reasons})"
        )
    rendered = render_dataset(documents.rows(), config.render, out_dir, total=documents.table.num_rows)
    png_index = write_pngs(rendered, Path(out_dir) / "png") if write_png else None
    manifest = rendered.manifest
    emit(
        {
            "out": str(rendered.path),
            **({"png_index": str(png_index)} if png_index else {}),
            "documents": documents.table.num_rows,
            "rejected_rows": documents.rejects,
            "pages": manifest["pages"],
            "truncated": manifest["truncated"],
            "missing_glyph_documents": manifest["missing_glyph_documents"],
            "font": manifest["font"]["path"],
        },
        as_json,
    )
