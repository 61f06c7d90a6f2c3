"""``deepsynth summarize``: render text files and print the model's summaries."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from deepsynth_cli.output import Command, echo, echo_json, json_option


@click.command(cls=Command)
@click.option(
    "--model", "model_ref", required=True, help="models:/NAME@ALIAS, models:/NAME/VERSION, an export folder or zip."
)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--max-new-tokens", type=int, default=None, help="Longest summary in tokens (default: the package's setting)."
)
@click.option(
    "--allow-unverified",
    is_flag=True,
    help="Also load a local folder without a manifest (e.g. a trainer output); nothing in it is verified.",
)
@json_option
def summarize(
    model_ref: str, files: tuple[str, ...], max_new_tokens: int | None, allow_unverified: bool, as_json: bool
) -> None:
    """Render each text FILE, run the model on its pages and print the summary."""
    if model_ref.startswith("models:/"):
        from deepsynth_cli.models import point_mlflow_at_stack

        point_mlflow_at_stack(model_ref)  # an unknown model, version or alias fails here, before torch loads
    elif not Path(model_ref).exists():
        from deepsynth.errors import ConfigError

        raise ConfigError(
            f"--model {model_ref}: no such export folder or zip package "
            "(or give models:/NAME@ALIAS, models:/NAME/VERSION)"
        )
    from deepsynth.inference import Summarizer
    from deepsynth.registry.refs import ModelRef

    summarizer = Summarizer.load(ModelRef.parse(model_ref), allow_unverified=allow_unverified)
    if max_new_tokens:
        summarizer.generation = dataclasses.replace(summarizer.generation, max_new_tokens=max_new_tokens)
    try:
        summaries = {path: summarizer.summarize_text(Path(path).read_text(encoding="utf-8")) for path in files}
    finally:
        summarizer.close()
    if as_json:
        echo_json(summaries)
    else:
        for path, summary in summaries.items():
            echo(f"== {path}\n{summary}")
