"""One ZenML materializer per custom artifact type; none falls back to pickle."""

from materializers.document_dataset import DocumentDatasetMaterializer
from materializers.evaluation_result import EvaluationResultMaterializer
from materializers.export_result import ExportResultMaterializer
from materializers.rendered_dataset import RenderedDatasetMaterializer
from materializers.trained_adapter import TrainedAdapterMaterializer
from materializers.validation_report import ValidationReportMaterializer

__all__ = [
    "DocumentDatasetMaterializer",
    "EvaluationResultMaterializer",
    "ExportResultMaterializer",
    "RenderedDatasetMaterializer",
    "TrainedAdapterMaterializer",
    "ValidationReportMaterializer",
]
