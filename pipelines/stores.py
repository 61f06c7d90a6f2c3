"""The home's embedded stores (ZenML's and MLflow's SQLite databases): set up once, checked before use.

The first set-up runs under a file lock (two first runs at once would both migrate the new
database) and ends by writing ``deepsynth-store.json`` beside ZenML's config: the databases it
created and the MLflow tracking URI of the ``deepsynth-local`` stack. From then on a missing,
empty or unreadable database is an error that names the file and the way back, never a new
empty store that hides the old registry. A set-up that never finished (say, on a full disk)
has no record: the next run moves what it left aside and starts again.

The record also lets read-only commands (``deepsynth models``, ``summarize``) find MLflow without
importing ZenML, while the local stack is the active one.

A home is relocatable: the record names its databases relative to ZenML's folder and remembers that
folder (``root``). ZenML's ``config.yaml`` and both databases hold absolute paths (the store URL,
artifact URIs, MLflow's artifact locations), so the first use of a copied or moved home rewrites
every path under the old folder to the new one, under the set-up lock, and says so on stderr: a
copy never reads or writes the original's stores.
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
#: The record's database paths (stored relative to ZenML's folder) and the key of that folder itself.
PATH_KEYS, ROOT = ("zenml_db", "mlflow_db"), "root"
ZENML_DB = ("local_stores", "default_zen_store", "zenml.db")


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


def _read_raw() -> dict[str, Any] | None:
    """The record as stored (paths relative to ZenML's folder), or ``None`` before the first set-up."""
    path = zenml_dir() / RECORD
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raw = exc
    if not isinstance(raw, dict):
        raise StoreError(
            f"{path} is unreadable ({raw}); delete it to let the next run check and re-record the stores"
        ) from None
    return raw


def _resolved(raw: dict[str, Any]) -> dict[str, Any]:
    """The record with absolute database paths and the MLflow tracking URI (derived when not stored)."""
    folder, record = zenml_dir(), {k: v for k, v in raw.items() if k != ROOT}
    for key in PATH_KEYS:
        if record.get(key) and not os.path.isabs(record[key]):
            record[key] = str(folder / record[key])
    if not record.get("tracking_uri") and record.get("mlflow_db"):
        record["tracking_uri"] = f"sqlite:///{record['mlflow_db']}"
    return record


def _stored(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as written: databases inside ZenML's folder relative to it, the folder itself as ``root``."""
    folder, raw = zenml_dir(), dict(record)
    derived = record.get("mlflow_db") and record.get("tracking_uri") == f"sqlite:///{record['mlflow_db']}"
    for key in PATH_KEYS:
        if raw.get(key) and Path(raw[key]).is_relative_to(folder):
            raw[key] = str(Path(raw[key]).relative_to(folder))
    if derived:
        raw.pop("tracking_uri")
    return {**raw, ROOT: str(folder)}


def _write_record(record: dict[str, Any]) -> None:
    temp = zenml_dir() / f".{RECORD}.tmp"
    temp.write_text(json.dumps(_stored(record), indent=2))
    temp.replace(zenml_dir() / RECORD)


def read_record() -> dict[str, Any] | None:
    """The set-up record of this home's ZenML folder (absolute paths), or ``None`` before the first complete set-up."""
    raw = _read_raw()
    return None if raw is None else _resolved(raw)


def _recorded_root(raw: dict[str, Any]) -> str | None:
    """The ZenML folder the stores were last used in (records from before ``root`` existed: from ``zenml_db``)."""
    if raw.get(ROOT):
        return str(raw[ROOT])
    database = Path(str(raw.get("zenml_db") or ""))
    if database.is_absolute() and database.parts[-3:] == ZENML_DB:
        return str(database.parents[2])
    return None


def relocate_if_moved() -> bool:
    """Point a copied or moved home's stores at itself (see the module docstring); ``True`` when it did.

    Runs under the set-up lock, so two first uses of a copy rewrite it once.
    """
    raw = _read_raw()
    if raw is None or _recorded_root(raw) in (None, str(zenml_dir())):
        return False
    with setup_lock():
        raw = _read_raw()
        old, new = _recorded_root(raw or {}), str(zenml_dir())
        if raw is None or old in (None, new):
            return False
        moved = {k: str(Path(new) / Path(raw[k]).relative_to(old)) for k in PATH_KEYS if _under(raw.get(k), old)}
        record = _resolved({**raw, **moved, "tracking_uri": _rebased(raw.get("tracking_uri"), old, new)})
        counts = {"config.yaml": _rebase_yaml(zenml_dir() / "config.yaml", old, new)}
        for key in PATH_KEYS:
            if record.get(key) and Path(record[key]).is_file():
                counts[Path(record[key]).name] = rebase_sqlite(Path(record[key]), old, new)
        _write_record(record)
    done = ", ".join(f"{n} in {where}" for where, n in counts.items())
    logger.warning("this home's stores were moved or copied from %s to %s: rewrote their paths (%s)", old, new, done)
    return True


def _under(value: Any, folder: str) -> bool:
    return isinstance(value, str) and os.path.isabs(value) and Path(value).is_relative_to(folder)


def _rebased(value: Any, old: str, new: str) -> Any:
    """``value`` with every path under ``old`` moved under ``new`` (strings inside lists and mappings too)."""
    if isinstance(value, str):
        return new if value == old else value.replace(old + "/", new + "/")
    if isinstance(value, dict):
        return {k: _rebased(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebased(v, old, new) for v in value]
    return value


def _rebase_yaml(path: Path, old: str, new: str) -> int:
    """Rewrite ZenML's ``config.yaml`` with paths under ``old`` moved to ``new``; 1 when it changed, else 0."""
    import yaml

    if not path.is_file():
        return 0
    data = yaml.safe_load(path.read_text())
    moved = _rebased(data, old, new)
    if moved == data:
        return 0
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(yaml.safe_dump(moved, sort_keys=False))
    temp.replace(path)
    return 1


def rebase_sqlite(path: Path, old: str, new: str) -> int:
    """Move every path under ``old`` to ``new`` in every text value of the SQLite database at ``path``.

    Returns:
        The number of values rewritten.
    """
    count = 0
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in (t for t in tables if not t.startswith("sqlite_")):
            quoted = '"' + table.replace('"', '""') + '"'
            for column in [r[1] for r in db.execute(f"PRAGMA table_info({quoted})")]:
                col = '"' + column.replace('"', '""') + '"'
                count += db.execute(
                    f"UPDATE {quoted} SET {col} = CASE WHEN {col} = ? THEN ? ELSE replace({col}, ?, ?) END "
                    f"WHERE typeof({col}) = 'text' AND ({col} = ? OR instr({col}, ?) > 0)",
                    (old, new, old + "/", new + "/", old, old + "/"),
                ).rowcount
        db.commit()
    return count


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
    relocate_if_moved()
    record = read_record()
    if record is None:
        with setup_lock():
            record = read_record()
            if record is None:
                database = zenml_dir().joinpath(*ZENML_DB)
                if not _adoptable(database):
                    _move_aside_unfinished()
                record = {**setup(), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
                _write_record(record)
                return read_record()
    check_record(record)
    return record


def require_ready() -> dict[str, Any] | None:
    """The checked record, for commands that only read: a home never set up is an error, not a new store."""
    if _remote_zenml():
        return None
    relocate_if_moved()
    record = read_record()
    if record is None:
        database = zenml_dir().joinpath(*ZENML_DB)
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
