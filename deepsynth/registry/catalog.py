"""What a model registry holds (names, versions, aliases) and one-line errors for references to anything else.

An index is ``{name: {"versions": ["1", ...], "aliases": {"champion": "1", ...}}}``. It comes from the
MLflow client (:func:`deepsynth.registry.versions.registry_index`, any store) or, in milliseconds
and without importing MLflow, from a local store's SQLite file (:func:`sqlite_index`): commands check a
reference against it before they load anything, so a typo fails at once with the names that exist.

:func:`sqlite_records` reads the same file in full (versions with their tags), which is all that
browsing the registry (``deepsynth models list/show``) needs: importing MLflow and opening its SQL
store costs 2-3 s per command, reading four small tables a few milliseconds.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepsynth.errors import ConfigError

Index = dict[str, dict[str, Any]]
#: MLflow's mark on a deleted version's row (``model_version_stages.STAGE_DELETED_INTERNAL``).
DELETED = "Deleted_Internal"
#: The workspace of every row of a store without MLflow workspaces (``DEFAULT_WORKSPACE_NAME``).
DEFAULT_WORKSPACE = "default"


@dataclass
class VersionRecord:
    """A model version with the attributes of MLflow's ``ModelVersion`` that the browse views read."""

    name: str
    version: str
    creation_timestamp: int | None
    run_id: str | None
    source: str | None
    status: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)


@dataclass
class ModelRecord:
    """A registered model with the attributes of MLflow's ``RegisteredModel`` and all its live versions."""

    name: str
    creation_timestamp: int | None
    description: str | None
    aliases: dict[str, str] = field(default_factory=dict)
    versions: list[VersionRecord] = field(default_factory=list)


def _read_records(db: sqlite3.Connection) -> dict[str, ModelRecord] | None:
    """Every model of the default workspace with its live versions, tags and aliases (None: other workspaces)."""
    for table in ("registered_models", "model_versions"):
        if db.execute(f"SELECT 1 FROM {table} WHERE workspace != ? LIMIT 1", (DEFAULT_WORKSPACE,)).fetchone():
            return None  # a store with MLflow workspaces: which ones a client sees is MLflow's business
    where = "workspace = ?"
    models = {
        name: ModelRecord(name, created, description)
        for name, created, description in db.execute(
            f"SELECT name, creation_time, description FROM registered_models WHERE {where} ORDER BY name",
            (DEFAULT_WORKSPACE,),
        )
    }
    versions: dict[tuple[str, str], VersionRecord] = {}
    for name, version, created, run_id, source, status in db.execute(
        "SELECT name, version, creation_time, run_id, source, status FROM model_versions "
        f"WHERE {where} AND (current_stage IS NULL OR current_stage != ?) ORDER BY name, version",
        (DEFAULT_WORKSPACE, DELETED),
    ):
        record = VersionRecord(name, str(version), created, run_id, source, status)
        versions[name, record.version] = record
        models.setdefault(name, ModelRecord(name, None, None)).versions.append(record)
    for name, version, key, value in db.execute(
        f"SELECT name, version, key, value FROM model_version_tags WHERE {where}", (DEFAULT_WORKSPACE,)
    ):
        if (name, str(version)) in versions:
            versions[name, str(version)].tags[key] = value
    for name, alias, version in db.execute(
        f"SELECT name, alias, version FROM registered_model_aliases WHERE {where} ORDER BY alias",
        (DEFAULT_WORKSPACE,),
    ):
        models.setdefault(name, ModelRecord(name, None, None)).aliases[alias] = str(version)
        if (name, str(version)) in versions:
            versions[name, str(version)].aliases.append(alias)
    return models


def sqlite_records(database: str | Path) -> dict[str, ModelRecord] | None:
    """Every registered model of an MLflow SQLite store, read directly (MLflow is not imported).

    ``None`` when the file cannot be read that way (missing, another schema, MLflow workspaces in use):
    ask MLflow then.
    """
    path = Path(database)
    if not path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return _read_records(db)
    except sqlite3.Error:
        return None


def index_of(records: dict[str, ModelRecord]) -> Index:
    """The index (names, versions, aliases) of :func:`sqlite_records`' result."""
    return {
        name: {"versions": [v.version for v in model.versions], "aliases": dict(model.aliases)}
        for name, model in records.items()
    }


def sqlite_index(database: str | Path) -> Index | None:
    """The index of an MLflow SQLite store, read directly; ``None`` when it cannot be read that way (ask MLflow)."""
    records = sqlite_records(database)
    return None if records is None else index_of(records)


def check_ref(ref: Any, index: Index) -> None:
    """Raise :class:`ConfigError` (exit code 2) naming what exists when ``ref``'s model, version or alias
    is not in ``index``.

    ``ref`` is a parsed reference (:class:`deepsynth.registry.refs.ModelRef`: ``text``, ``name``,
    ``version``, ``alias``).
    """
    name, version, alias, ref = ref.name, ref.version, ref.alias, ref.text
    if name not in index:
        known = ", ".join(sorted(index)) or "none yet (a run registers one: deepsynth run --config ...)"
        raise ConfigError(f"{ref}: no registered model named {name!r}; registered models: {known}")
    entry = index[name]
    if version is not None and version not in entry["versions"]:
        known = ", ".join(entry["versions"]) or "none"
        raise ConfigError(f"{ref}: {name} has no version {version}; its versions: {known}")
    if alias is not None and alias not in entry["aliases"]:
        known = ", ".join(f"@{a} (v{v})" for a, v in sorted(entry["aliases"].items())) or "none"
        raise ConfigError(f"{ref}: {name} has no alias @{alias}; its aliases: {known}")
