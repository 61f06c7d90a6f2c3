"""The home's stores are never silently replaced: set up once under a lock, checked on every use.

Every case runs real processes (``deepsynth`` or tests/support/set_up_store.py) on a home of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
SET_UP = str(ROOT / "tests" / "support" / "set_up_store.py")
RECOVERY = "restore it from a backup, or move"


def environment(home: Path) -> dict[str, str]:
    return {**os.environ, "DEEPSYNTH_HOME": str(home), "ZENML_CONFIG_PATH": str(home / "zenml")}


def set_up(home: Path, fault: str | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, SET_UP, *([fault] if fault else [])],
        env=environment(home),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def deepsynth(home: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deepsynth_cli", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment(home),
        timeout=300,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home set up by two first runs at once (the lock makes the second wait and find the first's stores)."""
    home = tmp_path_factory.mktemp("stores") / "home"
    first, second = set_up(home), set_up(home)
    results = [finished(first), finished(second)]
    for code, _out, err in results:
        assert code == 0, err[-3000:]
    records = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in results]
    assert records[0] == records[1]  # one set-up, seen by both
    return home


def recorded(home: Path, which: str) -> Path:
    """A database the home's set-up record names (stored relative to ZenML's folder)."""
    return home / "zenml" / json.loads((home / "zenml" / "deepsynth-store.json").read_text())[which]


def test_two_first_runs_at_once_share_one_set_up(home):
    record = json.loads((home / "zenml" / "deepsynth-store.json").read_text())
    assert record["root"] == str((home / "zenml").resolve())
    assert not Path(record["zenml_db"]).is_absolute() and not Path(record["mlflow_db"]).is_absolute()
    assert recorded(home, "zenml_db").is_file() and recorded(home, "mlflow_db").is_file()
    assert "analytics_opt_in: false" in (home / "zenml" / "config.yaml").read_text()  # stored, not only the env
    listed = deepsynth(home, "models", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def test_a_home_that_never_ran_is_an_error_and_stays_empty(tmp_path):
    proc = deepsynth(tmp_path / "new-home", "models", "list", "--json")
    assert proc.returncode == 2
    assert "nothing has run with this home yet" in json.loads(proc.stdout)["error"]
    assert not (tmp_path / "new-home" / "zenml").exists()  # no new, empty store hides anything


@pytest.mark.parametrize("which", ["zenml_db", "mlflow_db"])
@pytest.mark.parametrize("damage", ["missing", "empty", "garbage"])
def test_a_damaged_database_is_an_error_naming_the_file(home, which, damage):
    path = recorded(home, which)
    backup = path.with_name(path.name + ".test-backup")
    shutil.copy2(path, backup)
    try:
        if damage == "missing":
            path.unlink()
        else:
            path.write_bytes(b"" if damage == "empty" else b"these bytes are not an SQLite database" * 100)
        before = path.read_bytes() if path.exists() else None
        commands = [["models", "list", "--json"]]
        if which == "zenml_db" and damage == "missing":  # `run` checks through the same code: once is enough
            commands.append(["run", "--config", "configs/quickstart.yaml", "--json"])
        for argv in commands:
            proc = deepsynth(home, *argv)
            assert proc.returncode == 2, proc.stderr[-2000:]
            error = json.loads(proc.stdout)["error"]
            assert str(path) in error and RECOVERY in error
            assert "Traceback" not in proc.stderr
            assert (path.read_bytes() if path.exists() else None) == before  # left as it was: nothing replaced it
    finally:
        backup.replace(path)


@pytest.fixture(scope="module")
def full_disk(tmp_path_factory):
    """A home whose set-up hit a full disk and a copy of it as left: each test restores the copy to the home's own
    path (ZenML's config names it) and finishes the set-up there. (home, copy, the failed set-up's code and stderr)"""
    home = tmp_path_factory.mktemp("full-disk") / "home"
    code, _out, err = finished(set_up(home, "enospc"))
    kept = home.with_name("as-left")
    shutil.copytree(home, kept, symlinks=True)
    return home, kept, code, err


@pytest.mark.parametrize("zenml_db_half_written", [False, True])
def test_a_set_up_that_hit_a_full_disk_works_once_space_is_free(full_disk, zenml_db_half_written):
    home, kept, code, err = full_disk
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(kept, home, symlinks=True)
    assert code != 0 and "No space left on device" in err
    assert not (home / "zenml" / "deepsynth-store.json").exists()  # the set-up never finished
    database = home / "zenml" / "local_stores" / "default_zen_store" / "zenml.db"
    if zenml_db_half_written:  # the disk filled up while ZenML was writing its database
        database.write_bytes(database.read_bytes()[:4096])
    code, out, err = finished(set_up(home))
    assert code == 0, err[-3000:]
    assert Path(json.loads(out.strip().splitlines()[-1])["mlflow_db"]).is_file()
    moved_aside = list((home / "zenml").glob("unfinished-setup-*/local_stores/default_zen_store/zenml.db"))
    assert len(moved_aside) == int(zenml_db_half_written)  # a broken database is kept aside, never deleted
    assert deepsynth(home, "models", "list", "--json").returncode == 0


def registry_of(home: Path):
    """An MLflow client on ``home``'s own database (the global tracking URI is left alone)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{recorded(home, 'mlflow_db')}"
    return MlflowClient(uri, uri)


def test_mlflows_default_experiment_keeps_its_artifacts_in_the_home(home):
    """What runs outside the pipelines (a Studio merge's registration, a script's ``mlflow.start_run()``) lands in
    MLflow's Default experiment: its artifacts go under the home, not to ./mlruns of the folder the set-up ran in."""
    default = registry_of(home).get_experiment("0")
    assert Path(default.artifact_location).is_relative_to(recorded(home, "mlflow_db").parent), default
    assert not (ROOT / "mlruns").exists() or str(ROOT) not in default.artifact_location


def test_a_copied_or_moved_home_uses_its_own_stores_never_the_originals(home, tmp_path):
    """``cp -a home copy``: the copy's first use rewrites its paths (with a message); ``models list`` reads the copy's
    registry and ``models promote`` writes it, the original untouched; moved again, it follows again."""
    import sqlite3

    original = registry_of(home)
    artifacts = recorded(home, "mlflow_db").parent / "mlflow_artifacts"  # where ZenML's tracker puts them
    experiment = original.create_experiment("relocation", artifact_location=f"file:{artifacts}")
    run = original.create_run(experiment)
    model = original.create_registered_model("relocated-model")
    original.create_model_version(model.name, f"{run.info.artifact_uri}/model", run.info.run_id)
    try:
        copy = tmp_path / "copy"
        subprocess.run(["cp", "-a", str(home), str(copy)], check=True)
        listed = deepsynth(copy, "models", "list", "--json")
        assert listed.returncode == 0, listed.stderr[-2000:]
        assert "relocated-model" in [m["name"] for m in json.loads(listed.stdout)]
        assert f"moved or copied from {(home / 'zenml').resolve()} to {(copy / 'zenml').resolve()}" in listed.stderr
        texts = [(copy / "zenml" / "config.yaml").read_text(), (copy / "zenml" / "deepsynth-store.json").read_text()]
        with sqlite3.connect(recorded(copy, "mlflow_db")) as db:
            texts += [str(row) for row in db.execute("SELECT artifact_location FROM experiments")]
            texts += [str(row) for row in db.execute("SELECT artifact_uri FROM runs")]
        with sqlite3.connect(recorded(copy, "zenml_db")) as db:
            texts += [
                str(row) for table in ("stack_component", "stack") for row in db.execute(f"SELECT * FROM {table}")
            ]
        assert all(str(home) not in text for text in texts)  # nothing points back at the original any more
        assert str(copy / "zenml" / "local_stores") in (copy / "zenml" / "config.yaml").read_text()

        promoted = deepsynth(copy, "models", "promote", "relocated-model", "1", "--alias", "copied", "--json")
        assert promoted.returncode == 0, promoted.stderr[-2000:]
        assert "moved or copied" not in promoted.stderr  # rewritten once
        assert "copied" in registry_of(copy).get_registered_model("relocated-model").aliases
        assert "copied" not in original.get_registered_model("relocated-model").aliases

        moved = tmp_path / "moved"
        copy.rename(moved)
        again = deepsynth(moved, "models", "show", "relocated-model@copied", "--json")
        assert again.returncode == 0, again.stderr[-2000:]
        assert json.loads(again.stdout)["version"] == "1" and "moved or copied" in again.stderr
    finally:
        original.delete_registered_model("relocated-model")
