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
        elif key == "browse":
            click.echo("browse the registered versions:")
            for command in value.values():
                click.echo(f"  {command}")
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


@cli.group()
def models() -> None:
    """Browse and manage registered model versions (MLflow model registry of the active stack)."""


def _registry():
    from pipelines.stack import use_stack_tracking

    use_stack_tracking()
    from deepsynth import registry

    return registry


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the models as JSON.")
def models_list(as_json: bool) -> None:
    """List registered models with their versions, aliases, key metrics and creation time."""
    found = _registry().list_models()
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        return
    if not found:
        click.echo("no registered models yet: run `make run` (or deepsynth run --config ...)")
    for model in found:
        click.echo(f"{model['name']}  ({len(model['versions'])} version(s))")
        for v in model["versions"]:
            aliases = ",".join(v.get("aliases") or []) or "-"
            metrics = " ".join(f"{k}={v2:.4f}" for k, v2 in sorted((v.get("metrics") or {}).items()) if k.startswith("rouge"))
            click.echo(f"  v{v['version']:<4} @{aliases:<22} {v.get('created', '')}  {metrics}")


@models.command("show")
@click.argument("ref", metavar="NAME[/VERSION|@ALIAS]")
def models_show(ref: str) -> None:
    """Show a model, a version or an aliased version as JSON."""
    click.echo(json.dumps(_registry().show(ref), indent=2, default=str))


@models.command("promote")
@click.argument("name")
@click.argument("version")
@click.option("--alias", default="champion", show_default=True, help="Alias to point at VERSION.")
def models_promote(name: str, version: str, alias: str) -> None:
    """Point an alias (default: champion) at a version, bypassing the promotion gate."""
    result = _registry().promote(name, version, alias=alias)
    click.echo(f"{name} v{result['version']} now holds @{alias}")


@models.command("download")
@click.argument("ref", metavar="NAME@ALIAS|NAME/VERSION")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Empty folder for the package.")
def models_download(ref: str, out_dir: str) -> None:
    """Download a version's export package (verified against its manifest) into --out."""
    result = _registry().download(ref, out_dir)
    click.echo(json.dumps(result, indent=2, default=str))


@cli.command()
@click.option("--model", "model_ref", required=True, help="models:/NAME@ALIAS, models:/NAME/VERSION, an export folder or zip.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--max-new-tokens", type=int, default=None, help="Longest summary in tokens (default: the package's setting).")
@click.option("--json", "as_json", is_flag=True, help="Print {file: summary} as JSON.")
def summarize(model_ref: str, files: tuple[str, ...], max_new_tokens: int | None, as_json: bool) -> None:
    """Render each text FILE, run the model on its pages and print the summary."""
    if model_ref.startswith("models:/"):
        from pipelines.stack import use_stack_tracking

        use_stack_tracking()
    from deepsynth.inference import GenerationConfig, Summarizer

    generation = GenerationConfig(max_new_tokens=max_new_tokens) if max_new_tokens else None
    summarizer = Summarizer.load(model_ref, generation=generation)
    try:
        summaries = {path: summarizer.summarize_text(Path(path).read_text(encoding="utf-8")) for path in files}
    finally:
        summarizer.close()
    if as_json:
        click.echo(json.dumps(summaries, indent=2, ensure_ascii=False))
    else:
        for path, summary in summaries.items():
            click.echo(f"== {path}\n{summary}")


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

from deepsynth.cli_reliability import register  # noqa: E402  (recovery: re-run registration for an existing adapter)
cli.add_command(register)


if __name__ == "__main__":
    entry_point()
