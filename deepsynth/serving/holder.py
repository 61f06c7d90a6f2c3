"""One base model in memory with several LoRA adapters attached (peft multi-adapter), swapped atomically.

Packages are resolved and verified by :func:`deepsynth.inference.summarizer.resolve_ref` (manifest
sha256, no pickle-capable files, safe zip extraction) before a byte of them is loaded. A registry
alias is pinned to its version first, so the version reported is the one loaded. Everything that
touches the model (attaching, detaching, generating) holds :attr:`AdapterHolder.lock`: a swap attaches
the new adapter, reroutes the name and deletes the old adapter between two batches.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deepsynth.adapter_files import ADAPTER_CONFIG, ADAPTER_WEIGHTS, PROJECTOR_WEIGHTS, TEXT_ENCODER_DIR
from deepsynth.errors import ConfigError, DeepSynthError
from deepsynth.export.package import MANIFEST
from deepsynth.inference.loading import LoadedModel, read_trainer_config
from deepsynth.inference.summarizer import render_settings_for, resolve_ref
from deepsynth.models.dtypes import DTYPES
from deepsynth.models.loading import load_base_model
from deepsynth.rendering.renderer import DocumentRenderer
from deepsynth.serving.attach import attach_named_adapter

logger = logging.getLogger(__name__)


class UnknownAdapterError(DeepSynthError):
    """A request named no adapter that is served."""


@dataclass
class AdapterSlot:
    """A served adapter: its name, where it came from, its identity and what generation needs."""

    name: str
    ref: str
    peft_name: str
    sha256: str
    directory: Path
    loaded: LoadedModel
    registry_name: str | None = None
    version: str | None = None
    alias: str | None = None
    loaded_at: float = field(default_factory=time.time)
    work_dir: str | None = None
    renderer: DocumentRenderer | None = None
    render_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def mode(self) -> str:
        """Rendering mode of the adapter's training data."""
        return self.loaded.mode or render_settings_for(self.directory, None).modes[0]

    def render(self, text: str, instruction: str | None) -> list[bytes]:
        """The PNG pages ``text`` renders to with the adapter's training render settings."""
        with self.render_lock:  # one renderer per adapter; its caches are not shared between threads
            if self.renderer is None:
                self.renderer = DocumentRenderer(render_settings_for(self.directory, self.loaded.mode))
            doc = {"id": "request", "split": "inference", "text": text, "summary": "", "instruction": instruction}
            return self.renderer.render(doc)[0]["pages"]

    def info(self) -> dict[str, Any]:
        """JSON-able description (``GET /v1/adapters`` and every response)."""
        return {"name": self.name, "ref": self.ref, "registry_name": self.registry_name, "version": self.version,
                "alias": self.alias, "sha256": self.sha256, "mode": self.mode,
                "base_model": self.loaded.trainer_config.get("model_name"),
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at))}


def pin_registry_ref(ref: str) -> tuple[str, str | None, str | None, str | None]:
    """``(uri to download, registry name, version, alias)``; an alias is resolved to its version now."""
    if not ref.startswith("models:/"):
        return ref, None, None, None
    from deepsynth.registry import parse_ref, show

    name, version, alias = parse_ref(ref)
    if alias:
        version = show(f"{name}@{alias}")["version"]
    if version is None:
        raise ConfigError(f"{ref}: name a version (models:/NAME/VERSION) or an alias (models:/NAME@ALIAS)")
    return f"models:/{name}/{version}", name, str(version), alias


def _fetch_errors_named(ref: str, fetch: Any, *args: Any) -> Any:
    """``fetch(*args)``, with a registry's own errors (unknown model, alias, outage) as one :class:`ConfigError`."""
    try:
        return fetch(*args)
    except DeepSynthError:
        raise
    except Exception as exc:  # noqa: BLE001 - MlflowException and the transport errors under it
        if not ref.startswith("models:/"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{ref}: not available from the registry ({first})") from None


def _require_package(uri: str, ref: str) -> None:
    """Refuse a local folder without a manifest before anything is read (the server never loads unverified)."""
    if Path(uri).is_dir() and not (Path(uri) / MANIFEST).is_file():
        raise ConfigError(f"{ref}: not an export package (no {MANIFEST}); export the adapter first")


def _check_servable(directory: Path, ref: str) -> str:
    """The package's adapter sha256, after refusing what one shared base cannot serve."""
    if not (directory / ADAPTER_CONFIG).is_file() or not (directory / ADAPTER_WEIGHTS).is_file():
        raise ConfigError(f"{ref}: holds no LoRA adapter (a merged model cannot share a base; use deepsynth summarize)")
    if (directory / PROJECTOR_WEIGHTS).is_file() or (directory / TEXT_ENCODER_DIR).is_dir():
        raise ConfigError(f"{ref}: carries a trained projector or text encoder, which adapters on one shared base "
                          "model cannot differ in; serve LoRA-only adapters")
    return json.loads((directory / MANIFEST).read_text())["adapter_sha256"]


class AdapterHolder:
    """The base model and its adapter slots, keyed by served name.

    Args:
        device: ``cpu`` or ``cuda``.
        home: DeepSynth cache root (for the ``tiny`` base profile).
    """

    def __init__(self, device: str = "cpu", home: str | os.PathLike | None = None):
        self.device = device
        self.home = home
        self.lock = threading.RLock()
        self.model: Any = None
        self.tokenizer: Any = None
        self.base_key: tuple[Any, ...] | None = None
        self._slots: dict[str, AdapterSlot] = {}
        self._ids = itertools.count()
        self._source: Any = None

    def slots(self) -> list[AdapterSlot]:
        """The served adapters, in load order."""
        return list(self._slots.values())

    def resolve(self, key: str | None) -> AdapterSlot:
        """The slot a request names: served name, ref, alias, version, ``NAME/VERSION`` or sha256 prefix.

        Args:
            key: What the request gave (``None``: the only adapter, or the first one loaded).

        Raises:
            UnknownAdapterError: Nothing served matches (or several do).
        """
        slots = self.slots()
        if not slots:
            raise UnknownAdapterError("no adapter is loaded")
        if not key:
            return slots[0]
        for match in (lambda s: key in (s.name, s.ref), lambda s: key.removeprefix("@") == s.alias,
                      lambda s: key in (s.version, f"{s.registry_name}/{s.version}", f"models:/{s.registry_name}/{s.version}"),
                      lambda s: len(key) >= 8 and s.sha256.startswith(key)):
            found = [s for s in slots if match(s)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise UnknownAdapterError(f"adapter {key!r} is ambiguous: {', '.join(s.name for s in found)}")
        raise UnknownAdapterError(f"adapter {key!r} is not served (see GET /v1/adapters)")

    def load(self, ref: str, name: str | None = None) -> AdapterSlot:
        """Verify and attach the adapter at ``ref`` under ``name``, replacing a slot of that name atomically.

        Args:
            ref: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, an export directory or a zip package.
            name: Served name (default: ``ref``).

        Returns:
            The new slot (the previous one of that name, if any, is detached).
        """
        name = name or ref
        work_dir = tempfile.mkdtemp(prefix="deepsynth-serve-")
        try:
            uri, registry_name, version, alias = _fetch_errors_named(ref, pin_registry_ref, ref)
            _require_package(uri, ref)
            directory = _fetch_errors_named(ref, resolve_ref, uri, work_dir)
            sha = _check_servable(directory, ref)
            config = read_trainer_config(directory)
            with self.lock:
                self._ensure_base(config, ref)
                peft_name = f"adapter_{next(self._ids)}"
                try:
                    self.model = attach_named_adapter(self.model, directory, peft_name)
                except BaseException:
                    if not self._slots:  # peft changed the bare base in place: load it afresh next time
                        self.model = self.base_key = None
                    raise
                loaded = LoadedModel(self.model, self.tokenizer, self._source, config, None, directory)
                slot = AdapterSlot(name, ref, peft_name, sha, directory, loaded, registry_name, version, alias,
                                   work_dir=work_dir)
                old = self._slots.get(name)
                self._slots[name] = slot
                if old is not None:
                    self._detach(old)
        except BaseException:
            shutil.rmtree(work_dir, ignore_errors=True)
            raise
        logger.info("serving %s as %r (version %s, sha256 %s)", ref, name, version, sha[:12])
        return slot

    def unload(self, name: str) -> AdapterSlot:
        """Detach the adapter served as ``name`` (requests already batched with it finish first)."""
        with self.lock:
            slot = self._slots.pop(name, None)
            if slot is None:
                raise UnknownAdapterError(f"adapter {name!r} is not served (see GET /v1/adapters)")
            self._detach(slot)
        return slot

    def _detach(self, slot: AdapterSlot) -> None:
        with warnings.catch_warnings():  # peft names a new "active" adapter; requests name theirs anyway
            warnings.filterwarnings("ignore", message=".*was active which is now deleted")
            self.model.delete_adapter(slot.peft_name)
        shutil.rmtree(slot.work_dir or "", ignore_errors=True)

    def _ensure_base(self, config: dict[str, Any], ref: str) -> None:
        key = (config.get("model_name"), config.get("model_revision"), config.get("model_dtype", "float32"))
        if not key[0]:
            raise ConfigError(f"{ref}: trainer_config.json names no base model")
        if self.base_key is None:
            dtype = DTYPES.get(key[2], torch.float32)
            self.model, self.tokenizer, self._source = load_base_model(key[0], key[1], dtype=dtype, device=self.device,
                                                                       home=self.home)
            self.base_key = key
        elif key != self.base_key:
            raise ConfigError(f"{ref}: trained on base {key}, but this server's base is {self.base_key}")

    def close(self) -> None:
        """Remove every downloaded or extracted package."""
        for slot in self.slots():
            shutil.rmtree(slot.work_dir or "", ignore_errors=True)
