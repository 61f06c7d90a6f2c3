"""Lazy package exports: ``from package import Name`` imports the defining module on first use.

Packages whose modules pull in torch, transformers or MLflow use this so that reading a config
or printing ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving ``exports`` (name → defining module) on first access."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


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
