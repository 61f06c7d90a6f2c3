"""Serving: one base model in memory, several LoRA adapters on it, batched generation and hot swap.

:class:`~deepsynth.serving.holder.AdapterHolder` keeps the model and its adapter slots,
:class:`~deepsynth.serving.batcher.Batcher` groups concurrent requests (adapters may mix in a batch),
:class:`~deepsynth.serving.hot_swap.AliasPoller` follows registry aliases, and
:func:`~deepsynth.serving.app.create_app` is the HTTP API. Nothing here imports ZenML.
"""

from deepsynth.lazy import lazy_exports

_EXPORTS = {
    "ServeConfig": "deepsynth.serving.config",
    "AdapterHolder": "deepsynth.serving.holder",
    "Batcher": "deepsynth.serving.batcher",
    "AliasPoller": "deepsynth.serving.hot_swap",
    "ModelServer": "deepsynth.serving.server",
    "create_app": "deepsynth.serving.app",
    "merge_adapters": "deepsynth.serving.merge",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
