"""Materializer for :class:`deepsynth.export.ExportResult` (the export folder with its zip)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

from deepsynth.export.exporter import ExportResult
from deepsynth.training.adapter_set import ExportSet
from materializers.files import local_dir, upload_dir


class ExportResultMaterializer(BaseMaterializer):
    """Stores the verified export folder; the model card is its visualization."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (ExportResult,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> ExportResult:
        return ExportResult.from_dir(local_dir(self.uri))

    def save(self, data: ExportResult) -> None:
        upload_dir(data.output_dir, self.uri)

    def extract_metadata(self, data: ExportResult) -> dict[str, Any]:
        return {
            "adapter_sha256": data.adapter_sha256,
            "files": len(data.manifest["files"]),
            "package": os.path.basename(str(data.package_path)) if data.package_path else "",
        }

    def save_visualizations(self, data: ExportResult) -> dict[str, VisualizationType]:
        card = data.output_dir / "README.md"
        if not card.is_file():
            return {}
        path = os.path.join(self.uri, "README.md")
        if not fileio.exists(path):
            with fileio.open(path, "w") as handle:
                handle.write(card.read_text())
        return {path: VisualizationType.MARKDOWN}


class ExportSetMaterializer(BaseMaterializer):
    """Stores one verified export package per adapter of a multi-adapter run."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (ExportSet,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> ExportSet:
        return ExportSet(local_dir(self.uri))

    def save(self, data: ExportSet) -> None:
        upload_dir(data.path, self.uri)

    def extract_metadata(self, data: ExportSet) -> dict[str, Any]:
        return {"packages": ", ".join(data.packages())}
