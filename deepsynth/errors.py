"""Errors with the exit codes the CLI maps them to, and locations that name file, row and field."""

from __future__ import annotations

from dataclasses import dataclass


class DeepSynthError(Exception):
    """Base class: anything the CLI reports without a traceback."""

    exit_code = 1


class ConfigError(DeepSynthError):
    """Bad usage or configuration (exit code 2); ``key`` is the dotted config key at fault, if one is."""

    exit_code = 2

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class DataValidationError(DeepSynthError):
    """The dataset failed a dataset-level check (exit code 3)."""

    exit_code = 3


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

    exit_code = 2

    def __init__(self, location: Location, message: str):
        self.location = location
        super().__init__(f"{location}: {message}")


class QualityGateError(DeepSynthError):
    """The new model did not pass the promotion gate and the config requires it (exit code 4)."""

    exit_code = 4
