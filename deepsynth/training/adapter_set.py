"""The adapters of one multi-adapter run (``train.adapters`` / ``train.sweep``) and their export packages.

:class:`TrainedAdapterSet` is the training step's output folder: ``adapters.json`` and one
one-adapter trainer output per variant. :class:`ExportSet` is the export step's folder: one verified
package per variant. :func:`run_adapters` lists a run's adapters for serving them on one base.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsynth.adapters import TrainedAdapter

#: The export folder's index: ``{"adapters": [{"name", "dir", "adapter_sha256"}]}``.
EXPORT_INDEX = "exports.json"

#: The index a multi-adapter training output folder holds: every adapter's name, folder and variant.
ADAPTER_INDEX = "adapters.json"


def read_adapter_index(output_dir: str | Path) -> dict[str, Any] | None:
    """``adapters.json`` of a multi-adapter output folder (each entry's ``dir`` made absolute); None if absent."""
    path = Path(output_dir) / ADAPTER_INDEX
    if not path.is_file():
        return None
    index = json.loads(path.read_text())
    for entry in index["adapters"]:
        entry["dir"] = str(Path(output_dir) / entry["dir"])
    return index


@dataclass(frozen=True)
class TrainedAdapterSet:
    """A multi-adapter trainer output folder (``adapters.json`` + one adapter folder per variant)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if not (self.path / ADAPTER_INDEX).is_file():
            raise FileNotFoundError(f"{self.path}: not a multi-adapter training output (no {ADAPTER_INDEX})")

    @property
    def index(self) -> dict[str, Any]:
        """``adapters.json`` with absolute adapter folders."""
        return read_adapter_index(self.path)

    @property
    def sweep(self) -> dict[str, list[Any]]:
        """The ``train.sweep`` grid the variants came from (``{}`` for named adapters)."""
        return self.index.get("sweep") or {}

    def members(self) -> dict[str, TrainedAdapter]:
        """Variant name → its adapter, in training order."""
        return {entry["name"]: TrainedAdapter(entry["dir"]) for entry in self.index["adapters"]}

    def summary(self) -> dict[str, Any]:
        """Scalars worth showing next to the artifact: per variant its final loss and weights sha256."""
        out: dict[str, Any] = {"adapters": len(self.index["adapters"]), "mode": self.index.get("mode")}
        for name, adapter in self.members().items():
            final = adapter.metrics.get("final_loss")
            if isinstance(final, (int, float)):
                out[f"{name}.final_loss"] = final
            out[f"{name}.weights_sha256"] = adapter.sha256()
        return out


@dataclass(frozen=True)
class ExportSet:
    """One verified export package per variant, in subfolders named after the variants (``exports.json``)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def write_index(self, entries: list[dict[str, Any]]) -> None:
        """Record the packages (``name``, ``dir`` relative to the set, ``adapter_sha256``)."""
        (self.path / EXPORT_INDEX).write_text(json.dumps({"adapters": entries}, indent=2))

    def packages(self) -> dict[str, Path]:
        """Variant name → its export package folder."""
        index = json.loads((self.path / EXPORT_INDEX).read_text())
        return {entry["name"]: self.path / entry["dir"] for entry in index["adapters"]}


def run_adapters(registration: dict[str, Any]) -> list[tuple[str, str]]:
    """``(adapter name, registry ref)`` for every variant a multi-adapter run registered.

    ``registration`` is the run's ``registration`` output (:func:`steps.export_and_register` writes
    ``variants``: name → ``{"name", "version"}``); the refs are ``models:/NAME/VERSION`` URIs that
    ``deepsynth serve --model NAME=REF`` takes. A one-adapter run gives its one version.
    """
    variants = registration.get("variants")
    if not variants:
        return [(registration["name"], f"models:/{registration['name']}/{registration['version']}")]
    return [(name, f"models:/{entry['name']}/{entry['version']}") for name, entry in variants.items()]


def adapter_dirs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(adapter name, folder)`` of a multi-adapter training output or export set folder."""
    path = Path(path)
    if (path / EXPORT_INDEX).is_file():
        return [(name, str(folder)) for name, folder in ExportSet(path).packages().items()]
    return [(name, str(adapter.path)) for name, adapter in TrainedAdapterSet(path).members().items()]
