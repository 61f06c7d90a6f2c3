"""A new home's MLflow database, copied from a migrated empty one instead of migrated again.

MLflow creates a SQLite database by running every Alembic migration since its first schema: several
seconds, paid by every new home (every first run, every test home). The result is the same empty
schema each time for one MLflow version, so it is built once per version into the user's cache
(``$XDG_CACHE_HOME/deepsynth``, else ``~/.cache/deepsynth``) and copied. The template has no
experiment: MLflow adds the Default experiment, with the home's own artifact root, when the copy is
first opened, exactly as on a fresh database. Anything unusable (no writable cache, a damaged
template) falls back to MLflow's own migrations.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from deepsynth.paths import user_cache_dir

logger = logging.getLogger(__name__)


def create_database(database: Path, artifact_root: Path) -> None:
    """Open MLflow's SQLite store ``database``, made first if absent, its Default experiment in ``artifact_root``."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{database}"
    if database.exists():
        SqlAlchemyStore(uri, str(artifact_root)).engine.dispose()
        return
    copy = database.with_name(f".{database.name}.{os.getpid()}.copy")
    try:
        shutil.copyfile(_template(), copy)
        os.replace(copy, database)  # an interrupted copy leaves no half database behind
        SqlAlchemyStore(uri, str(artifact_root)).engine.dispose()  # also checks the schema is MLflow's current one
    except Exception as exc:  # noqa: BLE001  (any failure: migrate as MLflow does)
        logger.debug("MLflow schema template not used (%s); running MLflow's migrations", exc)
        copy.unlink(missing_ok=True)
        stale = SqlAlchemyStore._engine_map.pop(uri, None)  # pooled connections may hold the copy's file
        if stale is not None:
            stale.dispose()
        database.unlink(missing_ok=True)
        SqlAlchemyStore(uri, str(artifact_root)).engine.dispose()


def _template() -> Path:
    """This MLflow version's migrated empty database (without experiments), built on first use."""
    import mlflow
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path = user_cache_dir() / f"mlflow-{mlflow.__version__}-schema.db"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        built = Path(scratch) / "schema.db"
        SqlAlchemyStore(f"sqlite:///{built}", scratch).engine.dispose()
        with sqlite3.connect(built) as connection:
            connection.execute("DELETE FROM experiments")
        connection.close()
        os.replace(built, path)  # whole or not at all, also with another process building it at once
    return path
