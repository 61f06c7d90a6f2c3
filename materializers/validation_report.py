"""Materializer for :class:`deepsynth.validation.ValidationReport` (JSON; HTML visualization)."""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

from deepsynth.validation import ValidationReport, render_report_html

REPORT = "report.json"


class ValidationReportMaterializer(BaseMaterializer):
    """Stores the report as JSON; its ZenML visualization is the HTML report."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (ValidationReport,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def load(self, data_type: type[Any]) -> ValidationReport:
        with fileio.open(os.path.join(self.uri, REPORT), "r") as handle:
            return ValidationReport.from_dict(json.load(handle))

    def save(self, data: ValidationReport) -> None:
        with fileio.open(os.path.join(self.uri, REPORT), "w") as handle:
            json.dump(data.to_dict(), handle, ensure_ascii=False, indent=2)

    def extract_metadata(self, data: ValidationReport) -> dict[str, Any]:
        return {
            "success": data.success,
            "ingested": data.ingested,
            "valid": data.valid,
            "quarantined": data.quarantined,
            "pages": data.pages,
            "truncated": data.truncated,
        }

    def save_visualizations(self, data: ValidationReport) -> dict[str, VisualizationType]:
        path = os.path.join(self.uri, "report.html")
        with fileio.open(path, "w") as handle:
            handle.write(render_report_html(data))
        return {path: VisualizationType.HTML}
