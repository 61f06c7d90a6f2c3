"""Export a trained adapter as a verified package, and open packages safely."""

from deepsynth.export.config import ExportConfig
from deepsynth.export.exporter import ExportResult, export_adapter, export_from_config
from deepsynth.package import PackageError, open_package, verify_directory

__all__ = [
    "ExportConfig",
    "ExportResult",
    "PackageError",
    "export_adapter",
    "export_from_config",
    "open_package",
    "verify_directory",
]
