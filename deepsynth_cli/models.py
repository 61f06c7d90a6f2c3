"""``deepsynth models``: browse and manage registered model versions (the active stack's MLflow registry)."""

from __future__ import annotations

import click

from deepsynth_cli.output import echo_json


@click.group()
def models() -> None:
    """Browse and manage registered model versions (MLflow model registry of the active stack)."""


def _registry():
    """:mod:`deepsynth.registry`, with MLflow pointed at the active stack's tracker."""
    from pipelines.local_stack import use_stack_tracking

    use_stack_tracking()
    from deepsynth import registry

    return registry


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the models as JSON.")
def models_list(as_json: bool) -> None:
    """List registered models with their versions, aliases, key metrics and creation time."""
    found = _registry().list_models()
    if as_json:
        echo_json(found)
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
    echo_json(_registry().show(ref))


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
    echo_json(_registry().download(ref, out_dir))
