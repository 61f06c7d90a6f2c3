"""Browse views of the registry: every model with its versions, or one model, version or alias in detail."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from deepsynth.registry.catalog import ModelRecord, check_ref, index_of
from deepsynth.registry.refs import ModelRef
from deepsynth.registry.versions import client, iso, named_if_missing, search_versions, version_dict

KEY_METRICS = ("rouge_1", "rouge_2", "rouge_l")


def _listed_versions(rm: Any, found: Iterable[Any]) -> list[dict[str, Any]]:
    """Versions ``found`` of registered model ``rm``: aliases come with the model, not per version."""
    aliases: dict[str, list[str]] = {}
    for alias, version in (rm.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    return sorted(
        ({**version_dict(mv), "aliases": sorted(aliases.get(str(mv.version), []))} for mv in found),
        key=lambda v: int(v["version"]),
    )


def _models_with_versions(records: dict[str, ModelRecord] | None) -> Iterator[tuple[Any, Iterable[Any]]]:
    """(registered model, its versions) pairs from ``records``, else from MLflow (two queries per model)."""
    if records is not None:
        yield from ((model, model.versions) for model in records.values())
        return
    mlflow_client = client()
    for rm in mlflow_client.search_registered_models():
        yield rm, search_versions(mlflow_client, rm.name)


def list_models(records: dict[str, ModelRecord] | None = None) -> list[dict[str, Any]]:
    """Every registered model with its versions, aliases, key metrics and creation times.

    Args:
        records: The registry as :func:`deepsynth.registry.catalog.sqlite_records` read it; MLflow is asked without.
    """
    out = []
    for rm, found in _models_with_versions(records):
        versions = _listed_versions(rm, found)
        out.append(
            {
                "name": rm.name,
                "created": iso(rm.creation_timestamp),
                "description": rm.description or "",
                "aliases": {a: v["version"] for v in versions for a in v["aliases"]},
                "versions": [
                    {k: v[k] for k in ("version", "aliases", "created", "status")}
                    | {"metrics": {m: v["metrics"][m] for m in KEY_METRICS if m in v["metrics"]}}
                    for v in versions
                ],
            }
        )
    return sorted(out, key=lambda m: m["name"])


def _model_detail(rm: Any, found: Iterable[Any]) -> dict[str, Any]:
    return {
        "name": rm.name,
        "created": iso(rm.creation_timestamp),
        "description": rm.description or "",
        "versions": _listed_versions(rm, found),
    }


def show(ref: str, records: dict[str, ModelRecord] | None = None) -> dict[str, Any]:
    """Details of ``NAME`` (all versions), ``NAME/VERSION`` or ``NAME@ALIAS``.

    Args:
        ref: The reference.
        records: As for :func:`list_models`; an unknown name, version or alias is then a ConfigError naming what exists.
    """
    parsed = ModelRef.registry(ref)
    if records is not None:
        check_ref(parsed, index_of(records))
        model = records[parsed.name]
        if parsed.version is None and parsed.alias is None:
            return _model_detail(model, model.versions)
        wanted = parsed.version or model.aliases[parsed.alias]
        return version_dict(next(v for v in model.versions if v.version == wanted))
    if parsed.version is None and parsed.alias is None:
        mlflow_client = client()
        with named_if_missing(parsed, mlflow_client):
            rm = mlflow_client.get_registered_model(parsed.name)
        return _model_detail(rm, search_versions(mlflow_client, parsed.name))
    return version_dict(parsed.version_record())  # get_model_version(_by_alias) carries the aliases
