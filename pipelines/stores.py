"""The home's embedded stores (ZenML's and MLflow's SQLite databases): set up once, checked before use.

The first set-up runs under a file lock (two first runs at once would both migrate the new
database) and ends by writing ``deepsynth-store.json`` beside ZenML's config: the databases it
created and the MLflow tracking URI of the ``deepsynth-local`` stack. From then on a missing,
empty or unreadable database is an error that names the file and the way back, never a new
empty store that hides the old registry. A set-up that never finished (say, on a full disk)
has no record: the next run moves what it left aside and starts again.

The record also lets read-only commands (``deepsynth models``, ``summarize``) find MLflow without
importing ZenML, while the local stack is the active one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from deepsynth.errors import ConfigError, DeepSynthError

logger = logging.getLogger(__name__)
RECORD = "deepsynth-store.json"
LOCK = ".deepsynth-setup.lock"


class StoreError(DeepSynthError):
    """A store of this home is missing or damaged (exit code 2: nothing ran)."""

    exit_code = ConfigError.exit_code


def zenml_dir() -> Path:
    """ZenML's config folder (``ZENML_CONFIG_PATH``, which :func:`prepare_environment` points into the home)."""
    return Path(os.environ["ZENML_CONFIG_PATH"]).resolve()


def _remote_zenml() -> bool:
    return bool(os.environ.get("ZENML_STORE_URL"))


def sqlite_path(uri: str | None) -> Path | None:
    """The file of a ``sqlite:///`` URI, else ``None``."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix) :]) if uri and uri.startswith(prefix) else None


def check_database(path: Path, what: str, recovery: str) -> None:
    """Raise :class:`StoreError` unless ``path`` is a readable, non-empty SQLite database."""
    problem = None
    if not path.is_file():
        problem = "is missing"
    elif path.stat().st_size == 0:
        problem = "is empty (0 bytes)"
    else:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                if not db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    problem = "holds no tables"
        except sqlite3.DatabaseError as exc:
            problem = f"is not a readable SQLite database ({exc})"
    if problem:
        raise StoreError(f"{what} database {path} {problem}. {recovery}")


def read_record() -> dict[str, Any] | None:
    """The set-up record of this home's ZenML folder, or ``None`` before the first complete set-up."""
    path = zenml_dir() / RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(
            f"{path} is unreadable ({exc}); delete it to let the next run check and re-record the stores"
        ) from None


def check_record(record: dict[str, Any]) -> None:
    """Every database the record names is there and readable."""
    recovery = (
        f"It was created on {record.get('created', '?')}: restore it from a backup, or move {zenml_dir()} aside "
        "to start a new, empty store (its run history and model registry are then no longer used)."
    )
    for key, what in (("zenml_db", "ZenML"), ("mlflow_db", "MLflow")):
        if record.get(key):
            check_database(Path(record[key]), what, recovery)


@contextlib.contextmanager
def setup_lock(timeout_s: float = 600.0) -> Iterator[None]:
    """Hold the home's set-up lock (other processes setting up the same home wait for it)."""
    folder = zenml_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"{folder / LOCK}: another process has been setting up this home for "
                        f"{timeout_s:.0f} s; stop it or remove the home"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _move_aside_unfinished() -> None:
    """Move aside what a set-up that never finished left (its databases may be half written)."""
    folder = zenml_dir()
    leftovers = [folder / "config.yaml", folder / "local_stores"]
    if not any(p.exists() for p in leftovers):
        return
    aside = folder / f"unfinished-setup-{time.strftime('%Y%m%d-%H%M%S')}"
    aside.mkdir()
    for path in leftovers:
        if path.exists():
            path.rename(aside / path.name)
    logger.warning("an earlier set-up of %s never finished: moved what it left to %s and set up again", folder, aside)


def _adoptable(database: Path) -> bool:
    """A home set up before set-up records existed: its ZenML database is there and readable."""
    try:
        check_database(database, "ZenML", "")
    except StoreError:
        return False
    return True


def ensure_ready(setup: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """Check this home's stores, setting them up first (once, under the lock) if they never were.

    Args:
        setup: Creates the stores and returns the record's entries (``zenml_db``, ``stack_id``,
            ``tracking_uri``, ``mlflow_db``).

    Returns:
        The record, or ``None`` with a remote ZenML server (nothing local to check).
    """
    if _remote_zenml():
        return None
    record = read_record()
    if record is None:
        with setup_lock():
            record = read_record()
            if record is None:
                database = zenml_dir() / "local_stores" / "default_zen_store" / "zenml.db"
                if not _adoptable(database):
                    _move_aside_unfinished()
                record = {**setup(), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
                temp = zenml_dir() / f".{RECORD}.tmp"
                temp.write_text(json.dumps(record, indent=2))
                temp.replace(zenml_dir() / RECORD)
                return record
    check_record(record)
    return record


def require_ready() -> dict[str, Any] | None:
    """The checked record, for commands that only read: a home never set up is an error, not a new store."""
    if _remote_zenml():
        return None
    record = read_record()
    if record is None:
        database = zenml_dir() / "local_stores" / "default_zen_store" / "zenml.db"
        if database.is_file():
            return None  # set up before records existed: ZenML checks it
        raise StoreError(no_store_message())
    check_record(record)
    return record


def no_store_message() -> str:
    """Why a reading command found no store: where the home was looked for and how to get one."""
    from deepsynth.paths import find_home

    choice = find_home()
    where = zenml_dir()
    if where != choice.path / "zenml":
        where = f"{where} (ZENML_CONFIG_PATH)"
    return (
        f"no DeepSynth store in {where}: nothing has run with this home yet. Looked at {choice.looked()}. "
        "Run `deepsynth run --config configs/quickstart.yaml` first, run the command in or below the directory "
        "holding your .deepsynth/, or set DEEPSYNTH_HOME to the home you used."
    )


def active_stack_id() -> str | None:
    """The active stack of ZenML's stored config, read without importing ZenML."""
    import yaml

    path = zenml_dir() / "config.yaml"
    try:
        return (yaml.safe_load(path.read_text()) or {}).get("active_stack_id")
    except (OSError, yaml.YAMLError):
        return None
