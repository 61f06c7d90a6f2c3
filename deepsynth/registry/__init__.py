"""MLflow model registry access: register export packages, promotion gate, browse and download versions."""

from deepsynth.registry.model_registry import (
    CHALLENGER, CHAMPION, download, git_commit, list_models, parse_ref, promote, promote_if_better, register_package,
    show,
)

__all__ = ["CHALLENGER", "CHAMPION", "download", "git_commit", "list_models", "parse_ref", "promote",
           "promote_if_better", "register_package", "show"]
