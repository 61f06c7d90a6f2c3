"""One base model in memory with several LoRA adapters attached (peft multi-adapter), swapped atomically.

The engine's model half (the batcher is the other): it owns the base model's lifecycle and attaches
what :func:`~deepsynth.serving.sources.fetch_adapter` verified, under the names of a
:class:`~deepsynth.serving.slots.SlotTable`. Everything that touches the model (attaching,
detaching, generating) holds :attr:`AdapterHolder.lock`: a swap attaches the new adapter, reroutes
the name and deletes the old adapter between two batches.

Residency: at most ``max_loras`` adapters are attached; a new one first evicts the least recently
used adapter that is neither pinned nor named by a queued request. What a package records beside its
weights (render settings, decoding settings) is read right after it is verified, never later.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from deepsynth.errors import ConfigError, DeepSynthError
from deepsynth.inference.config import GenerationConfig
from deepsynth.inference.loading import LoadedModel, attach_adapter
from deepsynth.inference.summarizer import render_settings_for
from deepsynth.models.dtypes import DTYPES
from deepsynth.models.loading import load_base_model
from deepsynth.package import MANIFEST
from deepsynth.serving.scratch import scratch_dir, scratch_root
from deepsynth.serving.slots import AdapterSlot, SlotTable
from deepsynth.serving.sources import fetch_adapter


class AdapterCapacityError(DeepSynthError):
    """All ``max_loras`` adapter slots hold pinned adapters or adapters that queued requests name (HTTP 503)."""


def recorded_generation(directory: os.PathLike) -> GenerationConfig | None:
    """The decoding settings the package's manifest records (its evaluation's), or ``None`` when it records none."""
    manifest = Path(directory) / MANIFEST
    values = json.loads(manifest.read_text(encoding="utf-8")).get("generation")
    return GenerationConfig.from_recorded(values, source=str(manifest)) if values else None


logger = logging.getLogger(__name__)


class AdapterHolder:
    """The base model and its adapter slots, keyed by served name.

    Args:
        device: ``cpu`` or ``cuda``.
        home: DeepSynth cache root (for the ``tiny`` base profile; downloads go under its ``serve-tmp``).
        max_loras: Most adapters attached at once.
    """

    def __init__(self, device: str = "cpu", home: str | os.PathLike | None = None, max_loras: int = 8):
        self.device = device
        self.home = home
        self.max_loras = max_loras
        self.evictions = 0
        self._scratch = scratch_root(home)
        self.lock = threading.RLock()
        self.claims = threading.Lock()  # short: claiming a slot for a request vs choosing one to evict
        self.model: Any = None
        self.tokenizer: Any = None
        self.base_key: tuple[Any, ...] | None = None
        self.table = SlotTable()
        self._ids = itertools.count()
        self._source: Any = None

    def slots(self) -> list[AdapterSlot]:
        """The served adapters, in load order."""
        return self.table.all()

    def resolve(self, key: str | None) -> AdapterSlot:
        """The slot a request names (see :meth:`SlotTable.resolve`)."""
        return self.table.resolve(key)

    def claim(self, key: str | None) -> AdapterSlot:
        """:meth:`resolve`, and mark the slot in use by one more request (never evicted until :meth:`release`)."""
        with self.claims:
            slot = self.table.resolve(key)
            slot.in_flight += 1
            slot.last_used = time.monotonic()
            return slot

    def release(self, slot: AdapterSlot) -> None:
        """One request using ``slot`` is done."""
        with self.claims:
            slot.in_flight -= 1

    def load(self, ref: str, name: str | None = None, pinned: bool = False, claim: bool = False) -> AdapterSlot:
        """Verify and attach the adapter at ``ref`` under ``name``, replacing a slot of that name atomically.

        Args:
            ref: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, an export directory or a zip package.
            name: Served name (default: ``ref``).
            pinned: Never evict this adapter to make room for another.
            claim: Return the slot claimed for one request (see :meth:`claim`).

        Returns:
            The new slot (the previous one of that name, if any, is detached).

        Raises:
            AdapterCapacityError: A new name, and every resident adapter is pinned or in use.
        """
        name = name or ref
        if self.table.get(name) is None and not self._room_possible():
            raise AdapterCapacityError(
                f"cannot load {name!r}: all max_loras={self.max_loras} adapters are pinned or in use; "
                "retry later, or raise --max-loras"
            )
        work_dir = scratch_dir(self._scratch)
        try:
            source = fetch_adapter(ref, work_dir)
            render = render_settings_for(source.directory, source.trainer_config.get("mode"))
            generation = recorded_generation(source.directory)
            with self.lock:
                self._ensure_base(source.trainer_config, ref)
                old = self.table.get(name)
                if old is None:
                    self._make_room(name)
                peft_name = f"adapter_{next(self._ids)}"
                try:
                    self.model = attach_adapter(self.model, source.directory, peft_name)
                except BaseException:
                    if not self.table:  # peft changed the bare base in place: load it afresh next time
                        self.model = self.base_key = None
                    raise
                loaded = LoadedModel(
                    self.model, self.tokenizer, self._source, source.trainer_config, None, source.directory
                )
                slot = AdapterSlot(
                    name,
                    ref,
                    peft_name,
                    source.sha256,
                    source.directory,
                    loaded,
                    source.registry_name,
                    source.version,
                    source.alias,
                    work_dir=work_dir,
                    render_settings=render,
                    generation=generation,
                    pinned=pinned or bool(old and old.pinned),
                )
                with self.claims:
                    old = self.table.put(slot)
                    if claim:
                        slot.in_flight += 1
                if old is not None:
                    self._detach(old)
        except BaseException:
            shutil.rmtree(work_dir, ignore_errors=True)
            raise
        logger.info("serving %s as %r (version %s, sha256 %s)", ref, name, source.version, source.sha256[:12])
        return slot

    def unload(self, name: str) -> AdapterSlot:
        """Detach the adapter served as ``name`` (requests already batched with it finish first)."""
        with self.lock:
            slot = self.table.pop(name)
            self._detach(slot)
        return slot

    def _room_possible(self) -> bool:
        slots = self.table.all()
        return len(slots) < self.max_loras or any(not s.pinned and s.in_flight == 0 for s in slots)

    def _make_room(self, name: str) -> None:
        """Evict least recently used adapters until a new one fits (callers hold the lock)."""
        while len(self.table.all()) >= self.max_loras:
            with self.claims:
                victims = [s for s in self.table.all() if not s.pinned and s.in_flight == 0]
                if not victims:
                    raise AdapterCapacityError(
                        f"cannot load {name!r}: all max_loras={self.max_loras} adapters are pinned or in use; "
                        "retry later, or raise --max-loras"
                    )
                victim = min(victims, key=lambda s: s.last_used)
                self.table.pop(victim.name)
            self._detach(victim)
            self.evictions += 1
            idle = time.monotonic() - victim.last_used
            logger.info("evicted %r (least recently used, idle %.1f s) to load %r", victim.name, idle, name)

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
            self.model, self.tokenizer, self._source = load_base_model(
                key[0], key[1], dtype=dtype, device=self.device, home=self.home
            )
            self.base_key = key
        elif key != self.base_key:
            raise ConfigError(f"{ref}: trained on base {key}, but this server's base is {self.base_key}")

    def close(self) -> None:
        """Remove every downloaded or extracted package."""
        for slot in self.slots():
            shutil.rmtree(slot.work_dir or "", ignore_errors=True)
