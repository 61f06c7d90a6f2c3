"""Errors with the exit codes the CLI maps them to, and locations that name file, row and field.

Every exit code the ``deepsynth`` command documents is defined here, on a class, with its one-line
meaning: :func:`exit_codes` is the table that ``deepsynth --help`` prints and the README repeats.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any


class DeepSynthError(Exception):
    """Base class: anything the CLI reports without a traceback.

    Attributes:
        exit_code: The process's exit code (the class's, unless the instance was given another).
        meaning: One line on what the exit code means (``deepsynth --help`` and the README list it).
        summary: What a pipeline run produced before it failed (None: no run, or nothing to show).
    """

    exit_code: int = 1
    meaning: str = "any other failure"
    summary: dict[str, Any] | None = None

    def __init__(self, *args: Any, exit_code: int | None = None, summary: dict[str, Any] | None = None):
        super().__init__(*args)
        if exit_code is not None:
            self.exit_code = exit_code
        if summary is not None:
            self.summary = summary

    def with_summary(self, summary: dict[str, Any]) -> DeepSynthError:
        """Attach what the run produced before it failed; returns ``self``."""
        self.summary = summary
        return self


class ConfigError(DeepSynthError):
    """Bad usage or configuration (exit code 2); ``key`` is the dotted config key at fault, if one is."""

    exit_code = 2
    meaning = "bad usage or configuration (unknown key, unknown mode, missing file or column, unknown model)"

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class DataValidationError(DeepSynthError):
    """The dataset failed a dataset-level check (exit code 3)."""

    exit_code = 3
    meaning = "data validation failed (a dataset-level check)"


@dataclass(frozen=True)
class Location:
    """Where a problem is: file, 1-based row/line, field. Any part may be unknown."""

    file: str | None = None
    row: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file))
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.field:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts) or "<unknown location>"


class InputError(DeepSynthError):
    """Input that cannot be read at all (exit code 2); the message names file, row and field."""

    exit_code = ConfigError.exit_code
    meaning = ConfigError.meaning

    def __init__(self, location: Location, message: str):
        self.location = location
        super().__init__(f"{location}: {message}")


class QualityGateError(DeepSynthError):
    """The new model did not pass the promotion gate and the config requires it (exit code 4)."""

    exit_code = 4
    meaning = "quality gate: the new version was not promoted and register.require_promotion is set"


class Interrupted(DeepSynthError):
    """Ctrl-C (SIGINT) stopped the command (exit code 130, 128 + SIGINT, as shells report it)."""

    exit_code = 128 + signal.SIGINT
    meaning = "interrupted by Ctrl-C (SIGINT)"


class Terminated(DeepSynthError):
    """SIGTERM stopped the command after a checkpoint (exit code 143, what schedulers expect)."""

    exit_code = 128 + signal.SIGTERM
    meaning = "stopped by SIGTERM during training, after a checkpoint: rerun the same command to resume"


#: The classes whose exit codes the command documents, in the order they are listed (1 last).
DOCUMENTED = (ConfigError, DataValidationError, QualityGateError, Interrupted, Terminated, DeepSynthError)


def exit_codes() -> dict[int, str]:
    """Exit code → one-line meaning, for every code the command documents (0 first, 1 last)."""
    return {0: "success", **{cls.exit_code: cls.meaning for cls in DOCUMENTED}}
