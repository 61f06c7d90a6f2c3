"""``deepsynth summarize``: render text files and print the model's summaries."""

from __future__ import annotations

from pathlib import Path

import click

from deepsynth_cli.output import Command, echo, echo_json, json_option


@click.command(cls=Command)
@click.option("--model", "model_ref", required=True, help="models:/NAME@ALIAS, models:/NAME/VERSION, an export folder or zip.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--max-new-tokens", type=int, default=None, help="Longest summary in tokens (default: the package's setting).")
@json_option
def summarize(model_ref: str, files: tuple[str, ...], max_new_tokens: int | None, as_json: bool) -> None:
    """Render each text FILE, run the model on its pages and print the summary."""
    if model_ref.startswith("models:/"):
        from deepsynth_cli.logs import import_zenml
        from pipelines.local_stack import use_stack_tracking

        import_zenml()
        use_stack_tracking()
    from deepsynth.inference import GenerationConfig, Summarizer

    generation = GenerationConfig(max_new_tokens=max_new_tokens) if max_new_tokens else None
    summarizer = Summarizer.load(model_ref, generation=generation)
    try:
        summaries = {path: summarizer.summarize_text(Path(path).read_text(encoding="utf-8")) for path in files}
    finally:
        summarizer.close()
    if as_json:
        echo_json(summaries)
    else:
        for path, summary in summaries.items():
            echo(f"== {path}\n{summary}")
