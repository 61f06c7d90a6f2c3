"""Scheduled retraining without a schedulable orchestrator: a crontab entry that runs ``deepsynth run``.

Schedulable orchestrators (kubernetes, kubeflow, airflow, vertex, sagemaker) take the cron
``Schedule`` from ``configs/schedule.yaml``; the local orchestrators have none, so on the local
stack the machine's cron starts the run (``configs/schedule-local.yaml``). The entry works under
cron's bare environment (absolute paths, ``DEEPSYNTH_HOME`` set, output appended to a log) and
runs ``deepsynth schedule fire``: the run under a lock of the entry, so a firing while the
previous one still runs is skipped. Entries carry a marker comment so installing again replaces
the entry instead of adding a second one. ZenML is imported only to read the home's stacks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from deepsynth.errors import ConfigError
from deepsynth.paths import deepsynth_home

MARKER = "# deepsynth-schedule:"
#: Install into this file instead of the user's crontab (tests, containers without cron).
CRONTAB_FILE_ENV = "DEEPSYNTH_CRONTAB_FILE"

_FIELDS = [("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7)]
_NAMES = {
    3: {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    4: {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
}
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _value(text: str, index: int, where: str) -> int:
    name, low, high = _FIELDS[index]
    value = _NAMES.get(index, {}).get(text.lower())
    if value is None:
        if not text.isdigit():
            raise ConfigError(f"{where}: {name} field: {text!r} is not a number")
        value = int(text)
    if not low <= value <= high:
        raise ConfigError(f"{where}: {name} field: {value} is outside {low}-{high}")
    return value


def parse_cron(expr: str, where: str = "cron") -> list[str]:
    """Validate a 5-field cron expression (or an @macro); return its fields. Errors name the field."""
    expr = " ".join(str(expr).split())
    if expr in _MACROS:
        return [expr]
    fields = expr.split(" ")
    if len(fields) != 5:
        raise ConfigError(
            f"{where}: {expr!r} has {len(fields)} fields; expected 5 (minute hour day-of-month month day-of-week)"
        )
    for index, field in enumerate(fields):
        for part in field.split(","):
            base, _, step = part.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise ConfigError(f"{where}: {_FIELDS[index][0]} field: step {step!r} must be a positive number")
            if base == "*":
                continue
            start, dash, end = base.partition("-")
            first = _value(start, index, where)
            if dash and _value(end, index, where) < first:
                raise ConfigError(f"{where}: {_FIELDS[index][0]} field: range {base!r} runs backwards")
    return fields


#: The schedule configs: one for a stack with a schedulable orchestrator, one for the local stack.
STACK_CONFIG = Path("configs/schedule.yaml")
LOCAL_CONFIG = Path("configs/schedule-local.yaml")


def active_stack() -> str:
    """The name of the DeepSynth home's active ZenML stack (the local stack until another one is activated).

    ZenML is imported only when the stored active stack is not the local one set up by this home.
    """
    from pipelines.local_stack import STACK, prepare_environment
    from pipelines.stores import active_stack_id, read_record

    prepare_environment()
    active, record = active_stack_id(), read_record()
    if active is None or (record and active == record.get("stack_id")):
        return STACK
    from zenml.client import Client

    return Client().active_stack_model.name


def default_config(project: Path, stack: str) -> Path:
    """``configs/schedule.yaml`` of ``project`` when ``stack`` is the one it names, else
    ``configs/schedule-local.yaml``."""
    from pipelines.config_loading import load_run_config
    from pipelines.local_stack import STACK

    if stack != STACK and load_run_config(project / STACK_CONFIG).deployment.stack == stack:
        return project / STACK_CONFIG
    return project / LOCAL_CONFIG


def recipe_for(stack: str) -> str:
    """The ``deepsynth stack register`` argument that registers ``stack`` (a recipe of configs/stacks/ naming it)."""
    from pipelines.stack_recipes import RECIPES

    for path in sorted(RECIPES.glob("*.yaml")):
        for line in path.read_text().splitlines():
            if line.startswith("name:") and line.split("#")[0].split(":", 1)[1].strip() == stack:
                return f"configs/stacks/{path.name}"
    return "configs/stacks/<recipe>.yaml"


def check_stack(stack: str | None, config: Path) -> None:
    """Refuse, at install time, a config whose ``deployment.stack`` is not registered in this home.

    Raises:
        ConfigError: The stack is not registered; the message names it and the command that registers it.
    """
    from pipelines.local_stack import STACK

    if not stack or stack == STACK:
        return
    home = deepsynth_home()
    registered = False
    if active_stack() == stack:
        registered = True
    elif (Path(os.environ["ZENML_CONFIG_PATH"]) / "config.yaml").is_file():
        from zenml.client import Client

        registered = bool(Client().list_stacks(name=stack).items)
    if not registered:
        raise ConfigError(
            f"{config}: deployment.stack: the stack {stack!r} is not registered in the DeepSynth home {home}, so every "
            f"firing would fail. Register it first (deepsynth stack register {recipe_for(stack)}), or schedule a "
            "config "
            f"for the local stack (--config {LOCAL_CONFIG})",
            key="deployment.stack",
        )


def deepsynth_executable() -> str:
    """This environment's ``deepsynth`` console script (beside its Python), else the one on PATH."""
    beside = Path(sys.executable).with_name("deepsynth")
    return str(beside) if beside.is_file() else (shutil.which("deepsynth") or str(beside))


def log_path(home: Path, name: str) -> Path:
    """Where the entry ``name`` appends its firings' output."""
    return home / "logs" / f"schedule-{name}.log"


def lock_path(home: Path, name: str) -> Path:
    """The lock a firing of the entry ``name`` holds while its run goes."""
    return home / "locks" / f"schedule-{name}.lock"


class FiringBusy(Exception):
    """The previous firing of the entry still holds its lock; ``holder`` is what it wrote into the lock file."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


@contextlib.contextmanager
def firing_lock(path: Path) -> Iterator[IO[str]]:
    """Hold the entry's lock for the block; yield the locked file (a child process given its descriptor
    keeps the lock held while it runs). flock: released when the last holder ends, however it ends.

    Raises:
        FiringBusy: Another firing holds it now; nothing is waited for.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise FiringBusy(handle.read().strip() or "unknown process") from None
        try:
            handle.truncate(0)
            handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%dT%H:%M:%S%z')}")
            handle.flush()
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class CronJob:
    """One scheduled ``deepsynth run``, fired through ``deepsynth schedule fire``."""

    cron: str
    config: Path
    workdir: Path
    name: str = "retrain"
    executable: str | None = None
    log_file: Path | None = None
    overrides: tuple[str, ...] = ()
    home: Path | None = None

    def command(self) -> str:
        """The shell command cron runs: absolute paths and ``DEEPSYNTH_HOME``, as cron starts in $HOME
        with a bare PATH."""
        exe = self.executable or deepsynth_executable()
        home = deepsynth_home(self.home)
        argv = [str(Path(exe).absolute()), "schedule", "fire", self.name, "--config", str(self.config.resolve())]
        for item in self.overrides:
            argv += ["--set", item]
        log = Path(self.log_file or log_path(home, self.name)).absolute()
        return (
            f"cd {shlex.quote(str(self.workdir.resolve()))} && mkdir -p {shlex.quote(str(log.parent))} && "
            f"DEEPSYNTH_HOME={shlex.quote(str(home))} {shlex.join(argv)} >> {shlex.quote(str(log))} 2>&1"
        )

    def entry(self) -> str:
        """The crontab line, ending with the marker that identifies it."""
        parse_cron(self.cron, where="--cron")
        if any(c in self.name for c in " \n#"):
            raise ConfigError(f"--name: {self.name!r} must not contain spaces or '#'")
        return f"{' '.join(self.cron.split())} {self.command()} {MARKER}{self.name}"


def merge_entry(existing: str, entry: str, name: str) -> str:
    """``existing`` crontab text with the entry called ``name`` replaced by (or extended with) ``entry``."""
    return "\n".join(_others(existing, name) + [entry]) + "\n"


def _others(existing: str, name: str) -> list[str]:
    return [line for line in existing.splitlines() if not line.rstrip().endswith(f"{MARKER}{name}")]


def parse_entries(text: str) -> list[dict[str, object]]:
    """The DeepSynth entries of a crontab: name, cron, config, overrides, log file and the command cron runs."""
    found = []
    for line in text.splitlines():
        if MARKER not in line or line.lstrip().startswith("#"):
            continue
        body, _, name = line.rpartition(f" {MARKER}")
        fields = body.split(" ")
        width = 1 if fields[0].startswith("@") else 5
        command = " ".join(fields[width:])
        argv = shlex.split(command.rsplit(" && ", 1)[-1].split(" >> ")[0])
        config = argv[argv.index("--config") + 1] if "--config" in argv else None
        found.append(
            {
                "name": name.strip(),
                "cron": " ".join(fields[:width]),
                "config": config,
                "overrides": [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--set"],
                "log_file": shlex.split(command.rsplit(" >> ", 1)[-1])[0] if " >> " in command else None,
                "command": command,
            }
        )
    return found


def crontab_target(crontab_file: Path | None) -> Path | None:
    """``crontab_file``, else ``$DEEPSYNTH_CRONTAB_FILE``, else ``None`` (the user's crontab)."""
    if crontab_file is None and os.environ.get(CRONTAB_FILE_ENV):
        return Path(os.environ[CRONTAB_FILE_ENV])
    return crontab_file


def read_crontab(crontab_file: Path | None = None) -> str:
    """The crontab text (of :func:`crontab_target`); empty when there is none yet."""
    crontab_file = crontab_target(crontab_file)
    if crontab_file is not None:
        return crontab_file.read_text() if crontab_file.exists() else ""
    if not shutil.which("crontab"):
        raise ConfigError(
            f"no `crontab` command on this machine (install cron, or set {CRONTAB_FILE_ENV} to write a file)"
        )
    result = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    if result.returncode != 0:  # "no crontab for user" is an empty crontab
        return "" if "no crontab" in result.stderr else _fail(result)
    return result.stdout


def _fail(result: subprocess.CompletedProcess) -> str:
    raise ConfigError(f"crontab failed ({result.returncode}): {result.stderr.strip()}")


def _write(text: str, crontab_file: Path | None) -> None:
    crontab_file = crontab_target(crontab_file)
    if crontab_file is not None:
        crontab_file.parent.mkdir(parents=True, exist_ok=True)
        crontab_file.write_text(text)
        return
    result = subprocess.run(["crontab", "-"], input=text, capture_output=True, text=True)
    if result.returncode != 0:
        _fail(result)


def install(job: CronJob, crontab_file: Path | None = None) -> str:
    """Install ``job`` into ``crontab_file`` (or ``$DEEPSYNTH_CRONTAB_FILE``, else the user's crontab).

    Returns the installed line. Installing the same name again replaces the earlier line.
    """
    entry = job.entry()
    _write(merge_entry(read_crontab(crontab_file), entry, job.name), crontab_file)
    return entry


def remove(name: str, crontab_file: Path | None = None) -> dict[str, object]:
    """Remove the entry ``name``; return it as :func:`parse_entries` describes it.

    Raises:
        ConfigError: There is no such entry (the message names the ones there are).
    """
    text = read_crontab(crontab_file)
    entries = {entry["name"]: entry for entry in parse_entries(text)}
    if name not in entries:
        raise ConfigError(f"no schedule entry named {name!r} (entries: {', '.join(sorted(entries)) or 'none'})")
    others = _others(text, name)
    _write("\n".join(others) + "\n" if others else "", crontab_file)
    return entries[name]
