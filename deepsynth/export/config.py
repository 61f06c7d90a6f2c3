"""Export settings: what the package holds (:class:`ExportSettings`) and a whole export job (:class:`ExportConfig`).

The pipeline's ``export`` section is :class:`ExportSettings`: inside a pipeline the adapter
artifact is the model path and the export artifact's folder the output directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deepsynth.configuration import Section, from_dict, from_json, knob, to_dict
from deepsynth.errors import ConfigError


@dataclass
class ExportSettings(Section):
    """What :func:`deepsynth.export.export_adapter` writes into an export folder."""

    _section = "export"

    create_package: bool = knob(True, "also write a zip of the export directory")
    include_base_model: bool = knob(False, "store the merged model (merge_and_unload) instead of the adapter")
    package_name: str = knob("deepsynth_adapter.zip", "file name of the zip, written inside output_dir")

    def __post_init__(self) -> None:
        if not self.package_name.endswith(".zip") or "/" in self.package_name or "\\" in self.package_name:
            raise ConfigError(f"package_name: {self.package_name!r} must be a plain file name ending in .zip")


@dataclass
class ExportConfig(ExportSettings):
    """An export job: :class:`ExportSettings` plus where the adapter is read from and the export written."""

    model_path: str = knob("./trained_model", "trainer output directory holding the adapter")
    output_dir: str = knob("./export", "export directory to (re)create")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> ExportConfig:
        """Build from a dict (unknown keys are errors)."""
        return from_dict(cls, data, source=source)

    @classmethod
    def from_json(cls, path_or_text: str | os.PathLike) -> ExportConfig:
        """Build from a JSON file path or a JSON string of the job's keys."""
        return from_json(cls, path_or_text, "export config")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field."""
        return to_dict(self)
