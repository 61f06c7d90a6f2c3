"""Scheduled retraining without a schedulable orchestrator: a crontab entry that runs ``deepsynth run``.

Schedulable orchestrators (kubernetes, kubeflow, airflow, vertex, sagemaker) take the cron
``Schedule`` from ``configs/schedule.yaml``; the local orchestrators have none, so on the local
stack the machine's cron starts the run. Entries carry a marker comment so installing again
replaces the entry instead of adding a second one. No ZenML here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from deepsynth.errors import ConfigError

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
        raise ConfigError(f"{where}: {expr!r} has {len(fields)} fields; expected 5 (minute hour day-of-month month day-of-week)")
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


@dataclass
class CronJob:
    """One scheduled ``deepsynth run``."""

    cron: str
    config: Path
    workdir: Path
    name: str = "retrain"
    executable: str | None = None
    log_file: Path | None = None
    overrides: tuple[str, ...] = ()

    def command(self) -> str:
        """The shell command cron runs (absolute paths: cron starts in $HOME with a bare PATH)."""
        exe = self.executable or shutil.which("deepsynth") or str(Path(sys.executable).with_name("deepsynth"))
        argv = [exe, "run", "--config", str(self.config.resolve())]
        for item in self.overrides:
            argv += ["--set", item]
        log = self.log_file or self.workdir / ".deepsynth" / "logs" / f"schedule-{self.name}.log"
        return (
            f"cd {shlex.quote(str(self.workdir.resolve()))} && mkdir -p {shlex.quote(str(Path(log).parent))} && "
            f"{shlex.join(argv)} >> {shlex.quote(str(log))} 2>&1"
        )

    def entry(self) -> str:
        """The crontab line, ending with the marker that identifies it."""
        parse_cron(self.cron, where="--cron")
        if any(c in self.name for c in " \n#"):
            raise ConfigError(f"--name: {self.name!r} must not contain spaces or '#'")
        return f"{' '.join(self.cron.split())} {self.command()} {MARKER}{self.name}"


def merge_entry(existing: str, entry: str, name: str) -> str:
    """``existing`` crontab text with the entry called ``name`` replaced by (or extended with) ``entry``."""
    kept = [line for line in existing.splitlines() if not line.rstrip().endswith(f"{MARKER}{name}")]
    return "\n".join(kept + [entry]) + "\n"


def _read(crontab_file: Path | None) -> str:
    if crontab_file is not None:
        return crontab_file.read_text() if crontab_file.exists() else ""
    if not shutil.which("crontab"):
        raise ConfigError(f"no `crontab` command on this machine (install cron, or set {CRONTAB_FILE_ENV} to write a file)")
    result = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    if result.returncode != 0:  # "no crontab for user" is an empty crontab
        return "" if "no crontab" in result.stderr else _fail(result)
    return result.stdout


def _fail(result: subprocess.CompletedProcess) -> str:
    raise ConfigError(f"crontab failed ({result.returncode}): {result.stderr.strip()}")


def install(job: CronJob, crontab_file: Path | None = None) -> str:
    """Install ``job`` into ``crontab_file`` (or ``$DEEPSYNTH_CRONTAB_FILE``, else the user's crontab).

    Returns the installed line. Installing the same name again replaces the earlier line.
    """
    if crontab_file is None and os.environ.get(CRONTAB_FILE_ENV):
        crontab_file = Path(os.environ[CRONTAB_FILE_ENV])
    entry = job.entry()
    text = merge_entry(_read(crontab_file), entry, job.name)
    if crontab_file is not None:
        crontab_file.parent.mkdir(parents=True, exist_ok=True)
        crontab_file.write_text(text)
    else:
        result = subprocess.run(["crontab", "-"], input=text, capture_output=True, text=True)
        if result.returncode != 0:
            _fail(result)
    return entry
