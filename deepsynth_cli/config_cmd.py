"""``deepsynth config keys [SECTION]``: the configuration reference (docs/configuration.md) in the terminal."""

from __future__ import annotations

import click

from deepsynth_cli.output import Group, echo, echo_json, json_option


@click.group(cls=Group)
def config() -> None:
    """The keys of the run and serving configurations."""


@config.command("keys")
@click.argument("section", required=False)
@json_option
def config_keys(section: str | None, as_json: bool) -> None:
    """Every key with its type, default and help: all sections, one SECTION (train, render, serve, ...) or the
    keys under a dotted key (train.optimizer). An unknown SECTION exits 2 and lists the sections."""
    from pipelines.config_reference import render_text, select

    chosen = select(section)
    if as_json:
        echo_json({"sections": [s.to_dict() for s in chosen]})
    else:
        echo(render_text(chosen).rstrip("\n"))
