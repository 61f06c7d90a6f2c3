"""Lazy imports: package exports resolved on first use, modules whose code runs on first use, and
bitsandbytes kept out of peft.

Packages whose modules pull in torch, transformers or MLflow use :func:`lazy_exports` so that reading
a config or printing ``--help`` stays fast.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Iterator
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving ``exports`` (name → defining module) on first access."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


class _Deferred(importlib.abc.MetaPathFinder):
    """Finds the named modules as the path finder does, with a loader that runs them on first attribute use."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, name, path, target=None):
        if name not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


@contextlib.contextmanager
def deferred_imports(*names: str) -> Iterator[None]:
    """Inside the block, a first import of one of ``names`` gives a module whose code runs when an attribute
    of it is first used (:class:`importlib.util.LazyLoader`), by anyone, then or later.

    For a library that imports a heavy module at import time but uses it only in features DeepSynth
    does not call. A ``from name import x`` inside the block still runs the module at once.
    """
    finder = _Deferred(set(names))
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def _bitsandbytes_imported() -> bool:
    """peft's bitsandbytes check, as patched in: true once something imported bitsandbytes (QLoRA does)."""
    return sys.modules.get("bitsandbytes") is not None


class _WithoutBitsandbytes(importlib.abc.Loader):
    """Runs peft's own loader while ``import bitsandbytes`` fails, then points peft's checks at
    :func:`_bitsandbytes_imported` and lets bitsandbytes be imported again."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:  # resources, source and code come from peft's own loader
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _PeftFinder)]
        blocked = "bitsandbytes" not in sys.modules
        if blocked:
            sys.modules["bitsandbytes"] = None  # type: ignore[assignment]  # import raises, find_spec gives None
        try:
            self.loader.exec_module(module)
        finally:
            if blocked and sys.modules.get("bitsandbytes", False) is None:
                del sys.modules["bitsandbytes"]
        for name, loaded in list(sys.modules.items()):
            if name.split(".")[0] == "peft":
                for check in ("is_bnb_available", "is_bnb_4bit_available"):
                    if callable(getattr(loaded, check, None)):
                        setattr(loaded, check, _bitsandbytes_imported)


class _PeftFinder(importlib.abc.MetaPathFinder):
    """Finds peft as the path finder does, with its loader wrapped; removed once peft is loaded."""

    def find_spec(self, name, path, target=None):
        if name != "peft":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _WithoutBitsandbytes(spec.loader)
        return spec


def keep_bitsandbytes_out_of_peft() -> None:
    """Make peft import and use bitsandbytes only in a process that imported it itself (QLoRA).

    peft 0.21 imports bitsandbytes whenever it is installed: ``peft.helpers`` at import (peft had made
    that lazy in huggingface/peft#1230 and #1665), and every LoRA layer it creates checks
    ``is_bnb_available()`` (``importlib.util.find_spec``) and imports bitsandbytes' layer module.
    bitsandbytes' CPU backend imports torch's compiler stack: about 2 s of CPU in every process that
    trains or loads a plain LoRA adapter. Here peft's own import runs with bitsandbytes hidden, and its
    ``is_bnb_available``/``is_bnb_4bit_available`` become "bitsandbytes is already imported": a QLoRA
    run imports bitsandbytes to quantize before peft wraps the layers, so peft still wraps
    bitsandbytes' layers there. ``peft.helpers.bnb`` stays None (its weight-dequantizing helper, which
    DeepSynth does not use). Does nothing when peft is already imported.
    """
    if "peft" in sys.modules:
        return
    if not any(isinstance(finder, _PeftFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PeftFinder())
