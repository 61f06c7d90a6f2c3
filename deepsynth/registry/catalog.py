"""What a model registry holds (names, versions, aliases) and one-line errors for references to anything else.

An index is ``{name: {"versions": ["1", ...], "aliases": {"champion": "1", ...}}}``. It comes from the
MLflow client (:func:`deepsynth.registry.versions.registry_index`, any store) or, in milliseconds
and without importing MLflow, from a local store's SQLite file (:func:`sqlite_index`): commands check a
reference against it before they load anything, so a typo fails at once with the names that exist.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from deepsynth.errors import ConfigError

Index = dict[str, dict[str, Any]]
#: MLflow's mark on a deleted version's row (``model_version_stages.STAGE_DELETED_INTERNAL``).
DELETED = "Deleted_Internal"


def sqlite_index(database: str | Path) -> Index | None:
    """The index of an MLflow SQLite store, read directly; ``None`` when it cannot be read that way.

    Every workspace is included, so a name missing here is missing for the client too; ``None``
    (a missing file, another schema) means "ask MLflow".
    """
    path = Path(database)
    if not path.is_file():
        return None
    index: Index = {}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            for (name,) in db.execute("SELECT name FROM registered_models"):
                index[name] = {"versions": [], "aliases": {}}
            for name, version in db.execute(
                "SELECT name, version FROM model_versions WHERE current_stage IS NULL "
                "OR current_stage != ? ORDER BY version",
                (DELETED,),
            ):
                index.setdefault(name, {"versions": [], "aliases": {}})["versions"].append(str(version))
            for name, alias, version in db.execute("SELECT name, alias, version FROM registered_model_aliases"):
                index.setdefault(name, {"versions": [], "aliases": {}})["aliases"][alias] = str(version)
    except sqlite3.Error:
        return None
    return index


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
