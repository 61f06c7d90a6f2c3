"""``deepsynth adapters merge``: combine LoRA adapters into a new export package (peft add_weighted_adapter)."""

from __future__ import annotations

import click

from deepsynth_cli.output import Group, echo, echo_json, json_option


@click.group(cls=Group)
def adapters() -> None:
    """Work with adapter packages (merge several into one)."""


def _weights(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(w) for w in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: comma-separated numbers, e.g. 0.7,0.3") from None


@adapters.command("merge")
@click.argument("refs", nargs=-1, required=True, metavar="PACKAGE_OR_URI...")
@click.option(
    "--weights", callback=_weights, default=None, help="One weight per adapter, comma-separated (default: all 1/N)."
)
@click.option(
    "--method",
    type=click.Choice(["linear", "ties", "dare_linear", "cat"]),
    default="linear",
    show_default=True,
    help="linear (same rank), ties and dare_linear (pruned to --density), cat (ranks add up).",
)
@click.option(
    "--density", type=float, default=None, help="Fraction kept by ties / dare_linear, in (0, 1] (default 0.5)."
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Export folder to write: new or empty (see --force).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an earlier export package at --out. Never a folder of other files, and never one of "
    "the sources: --out that is, holds or lies inside a source is always refused.",
)
@json_option
def adapters_merge(
    refs: tuple[str, ...],
    weights: list[float] | None,
    method: str,
    density: float | None,
    out_dir: str,
    force: bool,
    as_json: bool,
) -> None:
    """Merge adapters (registry URIs, export folders or zips; each verified) into one package at --out.

    Arguments, sources and --out are checked before anything loads. The package is a normal export:
    deepsynth summarize, deepsynth serve and registration accept it.
    """
    from deepsynth.merge import check_merge, merge_adapters

    weights = check_merge(refs, weights, out_dir, method=method, density=density, force=force)
    from deepsynth.registry.refs import ModelRef

    registry_refs = [ref for ref in refs if ModelRef.parse(ref).is_registry]
    if registry_refs:
        from deepsynth_cli.models import point_mlflow_at_registry

        point_mlflow_at_registry(*registry_refs)
    result = merge_adapters(refs, weights, out_dir, method=method, density=density, force=force)
    summary = {**result.to_dict(), "method": method, "weights": weights, "sources": list(refs)}
    if as_json:
        echo_json(summary)
    else:
        echo(f"merged {len(refs)} adapters ({method}, weights {weights}) into {result.output_dir}")
        echo(f"  adapter sha256 {result.adapter_sha256}  package {result.package_path}")
