"""MLflow model registry access: register export packages, promotion gate, browse and download versions."""

from deepsynth.lazy import lazy_exports

_EXPORTS = {
    "CHALLENGER": "deepsynth.registry.model_registry",
    "CHAMPION": "deepsynth.registry.model_registry",
    "download": "deepsynth.registry.model_registry",
    "fetch_package": "deepsynth.registry.model_registry",
    "git_commit": "deepsynth.registry.model_registry",
    "list_models": "deepsynth.registry.model_registry",
    "parse_ref": "deepsynth.registry.catalog",
    "promote": "deepsynth.registry.model_registry",
    "promote_if_better": "deepsynth.registry.model_registry",
    "register_package": "deepsynth.registry.model_registry",
    "show": "deepsynth.registry.model_registry",
    "verify_registered": "deepsynth.registry.model_registry",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
