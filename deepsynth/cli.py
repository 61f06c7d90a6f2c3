"""The ``deepsynth`` command. Heavy libraries are imported inside commands so ``--help`` is instant.

Exit codes: 0 ok; 2 bad usage or config; 3 data validation failed; 1 any other failure.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from deepsynth.errors import DeepSynthError

MODES = ("tiny", "small", "base", "large", "gundam")


def _emit(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
        return
    for key, value in summary.items():
        if key == "quarantine":
            click.echo(f"quarantine: {len(value)} document(s)")
            for item in value[:20]:
                click.echo(f"  - {item.get('id')}: {item.get('reason')}")
            if len(value) > 20:
                click.echo(f"  … {len(value) - 20} more (use --json for all)")
        elif isinstance(value, (dict, list)):
            click.echo(f"{key}: {json.dumps(value, ensure_ascii=False, default=str)}")
        else:
            click.echo(f"{key}: {value}")


def _run(config, as_json: bool) -> None:
    from pipelines.run import run_pipeline

    try:
        # ZenML logs to stdout; with --json, stdout carries only the JSON document.
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            summary = run_pipeline(config)
    except DeepSynthError as exc:
        if getattr(exc, "summary", None):
            _emit(exc.summary, as_json)
        raise
    _emit(summary, as_json)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deepsynth-pipelines")
def cli() -> None:
    """DeepSynth: turn documents into a fine-tuned DeepSeek-OCR summarizer.

    Exit codes: 0 ok, 2 bad usage or config, 3 data validation failed, 1 other failure.
    """


@cli.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Run configuration YAML (see configs/).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value, e.g. --set render.modes=[tiny]. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
def run(config_path: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Run the pipeline that a config YAML describes."""
    from deepsynth.run_config import load_run_config

    _run(load_run_config(config_path, list(overrides)), as_json)


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--mode", type=click.Choice(MODES), default="base", show_default=True, help="DeepSeek-OCR resolution mode.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the document text.")
@click.option("--summary-column", default="summary", show_default=True, help="Column holding the reference summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def data(input_path: str, mode: str, text_column: str, summary_column: str, as_json: bool) -> None:
    """Ingest, render and validate a local JSONL/CSV/Parquet file as a ZenML pipeline.

    Prints counts (ingested, valid, quarantined with id and reason per row), pages, truncated
    and missing-glyph documents, and whether validation passed (exit code 3 if not).
    """
    from deepsynth.configuration import from_dict
    from deepsynth.run_config import RunConfig

    config = from_dict(
        RunConfig,
        {
            "pipeline": "data",
            "ingest": {"source": "file", "path": input_path, "text_column": text_column, "summary_column": summary_column},
            "render": {"modes": [mode]},
        },
        source="deepsynth data",
    )
    _run(config, as_json)


@cli.command()
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
    _emit(
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


from deepsynth.cli_ops import schedule, stack  # noqa: E402  (ops commands: stack register, schedule install)

cli.add_command(stack)
cli.add_command(schedule)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map errors to exit codes."""
    try:
        cli.main(args=argv, prog_name="deepsynth", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except DeepSynthError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a message, exit 1
        click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        return 1
    return 0


def entry_point() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
