"""``deepsynth models``: browse and manage registered model versions (the active stack's MLflow registry)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

import click

from deepsynth.errors import ConfigError
from deepsynth.paths import is_empty_folder
from deepsynth_cli.output import Group, echo, echo_json, json_option


@click.group(cls=Group, lazy_commands={"compare": "deepsynth_cli.compare:compare"})
def models() -> None:
    """Browse and manage registered model versions (MLflow model registry of the active stack)."""


def check_registry_refs(refs: Iterable[str], uri: str | None) -> None:
    """Check ``models:/`` references against the registry's SQLite file before MLflow is imported.

    An unknown model, version or alias fails here in milliseconds (exit code 2, naming what exists);
    a registry that is not a local SQLite file is checked by MLflow itself later.
    """
    from deepsynth.registry.catalog import check_ref, sqlite_index
    from deepsynth.registry.refs import ModelRef
    from pipelines.stores import sqlite_path

    database = sqlite_path(uri)
    index = sqlite_index(database) if database else None
    for ref in refs:
        if index is not None:
            check_ref(ModelRef.registry(ref), index)


def point_mlflow_at_stack(*refs: str) -> None:
    """Point MLflow at the active stack's tracker, checking ``refs`` first (see :func:`check_registry_refs`).

    ZenML is imported only when the local stack is not the active one.
    """
    from pipelines.local_stack import recorded_tracking_uri, use_stack_tracking

    uri = recorded_tracking_uri()
    if uri is None:
        from deepsynth_cli.logs import import_zenml

        import_zenml()
    check_registry_refs(refs, uri)
    use_stack_tracking(uri)


def point_mlflow_at_registry(*refs: str) -> None:
    """Like :func:`point_mlflow_at_stack`, but a container's ``MLFLOW_REGISTRY_URI``/``MLFLOW_TRACKING_URI`` win."""
    uri = os.environ.get("MLFLOW_REGISTRY_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        check_registry_refs(refs, uri)  # MLflow reads the variables itself
    else:
        point_mlflow_at_stack(*refs)


def local_records(*refs: str) -> dict | None:
    """The active stack's registry read straight from its SQLite file (``refs`` checked against it), if it is one.

    ``None`` when the registry is not a local SQLite file MLflow's schema can be read from: MLflow is then
    pointed at the stack's tracker (see :func:`point_mlflow_at_stack`) and asked. Browsing a local registry
    this way imports neither MLflow nor ZenML.
    """
    from deepsynth.registry.catalog import check_ref, index_of, sqlite_records
    from deepsynth.registry.refs import ModelRef
    from pipelines.local_stack import recorded_tracking_uri
    from pipelines.stores import sqlite_path

    database = sqlite_path(recorded_tracking_uri())
    records = sqlite_records(database) if database else None
    if records is None:
        point_mlflow_at_stack(*refs)
        return None
    for ref in refs:
        check_ref(ModelRef.registry(ref), index_of(records))
    return records


def _registry(*refs: str):
    """:mod:`deepsynth.registry`, with MLflow pointed at the active stack's tracker (``refs`` checked first)."""
    point_mlflow_at_stack(*refs)
    from deepsynth import registry

    return registry


@contextlib.contextmanager
def known_model(ref: str, through_mlflow: bool = True) -> Iterator[None]:
    """Turn MLflow's "does not exist" (a long message, exit 1) into one line with exit code 2."""
    if not through_mlflow:
        yield
        return
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise ConfigError(f"{ref}: no such registered model or version (see `deepsynth models list`)") from None


@models.command("list")
@json_option
def models_list(as_json: bool) -> None:
    """List registered models with their versions, aliases, key metrics and creation time."""
    from deepsynth.registry.browse import list_models

    found = list_models(local_records())
    if as_json:
        echo_json(found)
        return
    if not found:
        echo("no registered models yet: run `make run` (or deepsynth run --config ...)")
    for model in found:
        echo(f"{model['name']}  ({len(model['versions'])} version(s))")
        for v in model["versions"]:
            aliases = ",".join(v.get("aliases") or []) or "-"
            rouge = sorted((k, v2) for k, v2 in (v.get("metrics") or {}).items() if k.startswith("rouge"))
            metrics = " ".join(f"{k}={v2:.4f}" for k, v2 in rouge)
            echo(f"  v{v['version']:<4} @{aliases:<22} {v.get('created', '')}  {metrics}")


@models.command("show")
@click.argument("ref", metavar="NAME[/VERSION|@ALIAS]")
@json_option
def models_show(ref: str, as_json: bool) -> None:
    """Show a model, a version or an aliased version as JSON (always JSON; --json is accepted)."""
    from deepsynth.registry.browse import show

    records = local_records(ref)
    with known_model(ref, records is None):
        echo_json(show(ref, records))


@models.command("promote")
@click.argument("name")
@click.argument("version")
@click.option("--alias", default="champion", show_default=True, help="Alias to point at VERSION.")
@json_option
def models_promote(name: str, version: str, alias: str, as_json: bool) -> None:
    """Point an alias (default: champion) at a version, bypassing the promotion gate."""
    registry = _registry(f"{name}/{version}")
    with known_model(f"{name}/{version}"):
        result = registry.promote(name, version, alias=alias)
    if as_json:
        echo_json(result)
    else:
        echo(f"{name} v{result['version']} now holds @{alias}")


@models.command("download")
@click.argument("ref", metavar="NAME@ALIAS|NAME/VERSION")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="New or empty folder for the package."
)
@json_option
def models_download(ref: str, out_dir: str, as_json: bool) -> None:
    """Download a version's export package (verified against its manifest) into --out; prints JSON."""
    if not is_empty_folder(out_dir):
        raise ConfigError(f"--out {out_dir}: not an empty folder (nothing was downloaded)")
    registry = _registry(ref)
    with known_model(ref):
        echo_json(registry.download(ref, out_dir))
