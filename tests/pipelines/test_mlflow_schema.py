"""A new home's MLflow database is a copy of one migrated template: the same schema as MLflow's own, its own Default."""

from __future__ import annotations

import sqlite3

import pytest

from deepsynth.paths import user_cache_dir
from pipelines.mlflow_schema import create_database


def schema(database) -> list[tuple]:
    """Every table and index (its SQL's top-level items, sorted) and the Alembic revision.

    MLflow's own migrations do not write a table's constraints in a fixed order (they come from sets of
    objects hashed by identity), so two migrated databases can differ only in that order."""
    with sqlite3.connect(database) as connection:
        objects = connection.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    connection.close()
    return [(kind, name, _items(sql)) for kind, name, sql in objects] + revision


def _items(sql: str | None) -> list[str]:
    """The comma-separated items inside the outermost parentheses of ``sql``, whitespace-normalized and sorted."""
    if not sql or "(" not in sql:
        return [sql]
    body, depth, items, current = sql[sql.index("(") + 1 : sql.rindex(")")], 0, [], ""
    for char in body:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(" ".join(current.split()))
            current = ""
        else:
            current += char
    return sorted([*items, " ".join(current.split())])


def experiments(database) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT experiment_id, name, artifact_location FROM experiments").fetchall()
    connection.close()
    return rows


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "deepsynth"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """A database made by MLflow's own migrations, for comparison."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = tmp_path_factory.mktemp("migrated")
    SqlAlchemyStore(f"sqlite:///{folder / 'mlflow.db'}", str(folder / "artifacts")).engine.dispose()
    return folder / "mlflow.db"


def test_homes_get_mlflows_own_schema_and_each_its_own_default_experiment(cache, tmp_path, migrated):
    homes = [tmp_path / "a", tmp_path / "b"]
    for home in homes:
        home.mkdir()
        create_database(home / "mlflow.db", home / "mlflow_artifacts")
    assert user_cache_dir() == cache
    (template,) = cache.glob("mlflow-*-schema.db")
    assert experiments(template) == []  # MLflow adds Default to each copy, with that home's root
    for home in homes:
        assert schema(home / "mlflow.db") == schema(migrated)
        assert experiments(home / "mlflow.db") == [(0, "Default", str(home / "mlflow_artifacts" / "0"))]
        assert sorted(p.name for p in home.iterdir()) == ["mlflow.db"]  # no copy left behind


def test_an_existing_database_is_opened_not_replaced(cache, tmp_path):
    create_database(tmp_path / "mlflow.db", tmp_path / "first")
    create_database(tmp_path / "mlflow.db", tmp_path / "second")
    assert experiments(tmp_path / "mlflow.db") == [(0, "Default", str(tmp_path / "first" / "0"))]


@pytest.mark.parametrize("damage", ["garbage template", "cache is a file"])
def test_an_unusable_template_falls_back_to_mlflows_migrations(damage, cache, tmp_path, migrated):
    if damage == "garbage template":
        import mlflow

        cache.mkdir(parents=True)
        (cache / f"mlflow-{mlflow.__version__}-schema.db").write_bytes(b"not a database" * 100)
    else:
        cache.parent.mkdir(parents=True)
        cache.write_text("a file where the cache folder should be")
    home = tmp_path / "home"
    home.mkdir()
    create_database(home / "mlflow.db", home / "mlflow_artifacts")
    assert schema(home / "mlflow.db") == schema(migrated)
    assert experiments(home / "mlflow.db") == [(0, "Default", str(home / "mlflow_artifacts" / "0"))]
    assert sorted(p.name for p in home.iterdir()) == ["mlflow.db"]
