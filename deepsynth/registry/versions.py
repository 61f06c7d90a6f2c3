"""MLflow registry access shared by every registry job: the client, a version looked up by reference,
the registry's index, a version as a plain dict, and an alias set despite a concurrent insert.

No tracking URI is set here: callers (the ZenML stack's experiment tracker, the CLI, tests) choose
the store. Aliases, not stages.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from deepsynth.errors import ConfigError
from deepsynth.registry.catalog import Index, check_ref

METRIC_PREFIX = "metric."
#: Registered model names DeepSynth creates: safe in any filter, URI or file name without quoting.
MODEL_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
#: Alias names MLflow accepts ("latest" and "v<number>" are reserved for versions).
ALIAS_PATTERN = r"[A-Za-z0-9_-]{1,255}"
#: Version tags a downloaded package must match: the adapter's identity and the manifest's own bytes.
ADAPTER_SHA_TAG, MANIFEST_SHA_TAG = "adapter_sha256", "manifest_sha256"


def client() -> Any:
    """An MLflow client on the configured tracking and registry URIs."""
    from mlflow import MlflowClient

    return MlflowClient()


def iso(ms: int | None) -> str | None:
    """An MLflow millisecond timestamp as ISO 8601 UTC (``None`` when unset)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat() if ms else None


def metrics_from_tags(tags: dict[str, str]) -> dict[str, float]:
    """The ``metric.<name>`` version tags as ``{name: value}``."""
    return {k.removeprefix(METRIC_PREFIX): float(v) for k, v in tags.items() if k.startswith(METRIC_PREFIX)}


def model_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a registered model name DeepSynth creates, else ``None``."""
    if re.fullmatch(MODEL_NAME_PATTERN, name or ""):
        return None
    return (
        f"{name[:80]!r} is not a usable registered model name: use 1-128 letters, digits, '.', '_' or '-', "
        f"starting with a letter or digit (pattern {MODEL_NAME_PATTERN})"
    )


def check_model_name(name: str) -> None:
    """Raise :class:`ConfigError` (exit code 2) unless ``name`` matches :data:`MODEL_NAME_PATTERN`."""
    problem = model_name_problem(name)
    if problem:
        raise ConfigError(problem)


def check_alias(alias: str) -> None:
    """Raise :class:`ConfigError` (exit code 2) naming the rule unless MLflow would accept ``alias``."""
    if not re.fullmatch(ALIAS_PATTERN, alias or ""):
        raise ConfigError(
            f"alias {alias[:80]!r}: use 1-255 letters, digits, '_' or '-' (pattern {ALIAS_PATTERN}), e.g. champion"
        )
    if alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise ConfigError(f"alias {alias!r} is reserved by MLflow (latest, v<number> name versions)")


def name_filter(name: str) -> str | None:
    """An MLflow search filter for registered model ``name``, quoted so the name cannot break it.

    MLflow's filter strings have no escape character: a name with a ``'`` is quoted with ``"``;
    ``None`` when it holds both quote characters (filter the results by name instead, see
    :func:`search_versions`).
    """
    if "'" not in name:
        return f"name = '{name}'"
    if '"' not in name:
        return f'name = "{name}"'
    return None


def search_versions(mlflow_client: Any, name: str) -> list[Any]:
    """Every version of registered model ``name`` (whatever characters it holds), as MLflow's search returns them."""
    query = name_filter(name)
    if query is not None:
        return list(mlflow_client.search_model_versions(query))
    return [mv for mv in mlflow_client.search_model_versions(max_results=100_000) if mv.name == name]


def version_dict(mv: Any) -> dict[str, Any]:
    """A model version as a JSON-able dict (metrics apart from the other tags)."""
    tags = dict(mv.tags or {})
    return {
        "name": mv.name,
        "version": str(mv.version),
        "aliases": sorted(mv.aliases or []),
        "created": iso(mv.creation_timestamp),
        "run_id": mv.run_id,
        "source": mv.source,
        "status": mv.status,
        "metrics": metrics_from_tags(tags),
        "tags": {k: v for k, v in tags.items() if not k.startswith(METRIC_PREFIX)},
        "uri": f"models:/{mv.name}/{mv.version}",
    }


def set_alias(mlflow_client: Any, name: str, alias: str, version: str, attempts: int = 5) -> None:
    """Point ``alias`` at ``version``, trying again after losing an insert race.

    Two processes setting a new alias at once both try to insert it (MLflow's SQL store checks, then
    inserts): the loser's unique-constraint error means the row now exists, and a retry updates it.
    """
    for attempt in range(attempts):
        try:
            mlflow_client.set_registered_model_alias(name, alias, version)
            return
        except Exception as exc:  # noqa: BLE001 - MlflowException wrapping the database's IntegrityError
            lost_race = "UNIQUE constraint" in str(exc) or "duplicate key" in str(exc)
            if not lost_race or attempt == attempts - 1:
                raise


def registry_index(mlflow_client: Any = None) -> Index:
    """What the registry holds (see :mod:`deepsynth.registry.catalog`), through the MLflow client."""
    mlflow_client = mlflow_client or client()
    index: Index = {}
    for rm in mlflow_client.search_registered_models():
        found = search_versions(mlflow_client, rm.name)
        versions = sorted((str(mv.version) for mv in found), key=int)
        index[rm.name] = {"versions": versions, "aliases": {a: str(v) for a, v in (rm.aliases or {}).items()}}
    return index


@contextlib.contextmanager
def named_if_missing(ref: Any, mlflow_client: Any) -> Iterator[None]:
    """Turn MLflow's "not found" for ``ref`` (a parsed reference) into a :class:`ConfigError` naming what exists."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        check_ref(ref, registry_index(mlflow_client))  # raises, naming what exists
        raise


def get_version(ref: Any) -> Any:
    """The MLflow model version a parsed reference (``name`` with ``version`` or ``alias``) names now."""
    mlflow_client = client()
    with named_if_missing(ref, mlflow_client):
        if ref.alias and not ref.version:
            return mlflow_client.get_model_version_by_alias(ref.name, ref.alias)
        return mlflow_client.get_model_version(ref.name, ref.version)
