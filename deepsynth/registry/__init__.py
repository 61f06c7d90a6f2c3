"""MLflow model registry access: model references, register export packages, promotion gate, browse and download."""

from deepsynth.lazy import lazy_exports

_EXPORTS = {
    "CHALLENGER": "deepsynth.registry.promotion",
    "CHAMPION": "deepsynth.registry.promotion",
    "ModelRef": "deepsynth.registry.refs",
    "download": "deepsynth.registry.refs",
    "fetch_package": "deepsynth.registry.refs",
    "git_commit": "deepsynth.registry.git_info",
    "list_models": "deepsynth.registry.browse",
    "parse_ref": "deepsynth.registry.refs",
    "promote": "deepsynth.registry.promotion",
    "promote_if_better": "deepsynth.registry.promotion",
    "register_package": "deepsynth.registry.register",
    "show": "deepsynth.registry.browse",
    "verify_registered": "deepsynth.registry.fetch",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
