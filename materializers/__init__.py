"""One ZenML materializer per custom artifact type; none falls back to pickle."""

from materializers.document_dataset import DocumentDatasetMaterializer
from materializers.rendered_dataset import RenderedDatasetMaterializer
from materializers.validation_report import ValidationReportMaterializer

__all__ = ["DocumentDatasetMaterializer", "RenderedDatasetMaterializer", "ValidationReportMaterializer"]
