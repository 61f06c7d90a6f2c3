"""Serving: one base model in memory, several LoRA adapters on it, batched generation and hot swap.

:mod:`~deepsynth.serving.slots` maps served names to adapter slots,
:mod:`~deepsynth.serving.sources` turns a reference into a verified adapter directory,
:class:`~deepsynth.serving.holder.AdapterHolder` owns the base model and attaches adapters to it,
:class:`~deepsynth.serving.batcher.Batcher` groups concurrent requests (adapters may mix in a batch),
:class:`~deepsynth.serving.hot_swap.AliasPoller` follows registry aliases,
:class:`~deepsynth.serving.server.ModelServer` puts them behind one object, and
:func:`~deepsynth.serving.app.create_app` / :class:`~deepsynth.serving.http.HttpServer` are the HTTP API.
Merging adapters is an offline tool: :mod:`deepsynth.merge`. Nothing here imports ZenML.
"""

from deepsynth.lazy import lazy_exports

_EXPORTS = {
    "ServeConfig": "deepsynth.serving.config",
    "AdapterHolder": "deepsynth.serving.holder",
    "Batcher": "deepsynth.serving.batcher",
    "AliasPoller": "deepsynth.serving.hot_swap",
    "ModelServer": "deepsynth.serving.server",
    "create_app": "deepsynth.serving.app",
    "HttpServer": "deepsynth.serving.http",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
