"""Browse views of the registry: every model with its versions, or one model, version or alias in detail."""

from __future__ import annotations

from typing import Any

from deepsynth.registry.refs import ModelRef
from deepsynth.registry.versions import client, iso, named_if_missing, version_dict

KEY_METRICS = ("rouge_1", "rouge_2", "rouge_l")


def _listed_versions(mlflow_client: Any, rm: Any) -> list[dict[str, Any]]:
    """Versions of registered model ``rm`` in two queries: aliases come with the model, not per version."""
    aliases: dict[str, list[str]] = {}
    for alias, version in (rm.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    found = mlflow_client.search_model_versions(f"name = '{rm.name}'")
    return sorted(
        ({**version_dict(mv), "aliases": sorted(aliases.get(str(mv.version), []))} for mv in found),
        key=lambda v: int(v["version"]),
    )


def list_models() -> list[dict[str, Any]]:
    """Every registered model with its versions, aliases, key metrics and creation times."""
    mlflow_client, out = client(), []
    for rm in mlflow_client.search_registered_models():
        versions = _listed_versions(mlflow_client, rm)
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


def show(ref: str) -> dict[str, Any]:
    """Details of ``NAME`` (all versions), ``NAME/VERSION`` or ``NAME@ALIAS``."""
    parsed = ModelRef.registry(ref)
    if parsed.version is None and parsed.alias is None:
        mlflow_client = client()
        with named_if_missing(parsed, mlflow_client):
            rm = mlflow_client.get_registered_model(parsed.name)
        return {
            "name": parsed.name,
            "created": iso(rm.creation_timestamp),
            "description": rm.description or "",
            "versions": _listed_versions(mlflow_client, rm),
        }
    return version_dict(parsed.version_record())  # get_model_version(_by_alias) carries the aliases
