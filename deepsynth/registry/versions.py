"""MLflow registry access shared by every registry job: the client, a version looked up by reference,
the registry's index, a version as a plain dict, and an alias set despite a concurrent insert.

No tracking URI is set here: callers (the ZenML stack's experiment tracker, the CLI, tests) choose
the store. Aliases, not stages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from deepsynth.registry.catalog import Index, check_ref

METRIC_PREFIX = "metric."
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
        found = mlflow_client.search_model_versions(f"name = '{rm.name}'")
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
