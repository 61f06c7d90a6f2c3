"""Materializer for :class:`deepsynth.evaluation.EvaluationResult` (JSON; HTML metric table)."""

from __future__ import annotations

import json
import math
import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

from deepsynth.evaluation.report import render_html
from deepsynth.evaluation.result import EvaluationResult

RESULT = "evaluation.json"


class EvaluationResultMaterializer(BaseMaterializer):
    """Stores per-system metrics and per-document rows as JSON; visualized as the metric report."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (EvaluationResult,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA_ANALYSIS

    def load(self, data_type: type[Any]) -> EvaluationResult:
        with fileio.open(os.path.join(self.uri, RESULT), "r") as handle:
            return EvaluationResult.from_dict(json.load(handle))

    def save(self, data: EvaluationResult) -> None:
        with fileio.open(os.path.join(self.uri, RESULT), "w") as handle:
            json.dump(data.to_dict(), handle, indent=2)

    def extract_metadata(self, data: EvaluationResult) -> dict[str, Any]:
        return {
            f"{system}.{name}": value
            for system, metrics in data.systems.items()
            for name, value in metrics.items()
            if isinstance(value, (int, float)) and math.isfinite(value)
        }

    def save_visualizations(self, data: EvaluationResult) -> dict[str, VisualizationType]:
        path = os.path.join(self.uri, "evaluation.html")
        with fileio.open(path, "w") as handle:
            handle.write(render_html(data))
        return {path: VisualizationType.HTML}
