"""One base model in memory with several LoRA adapters attached (peft multi-adapter), swapped atomically.

The engine's model half (the batcher is the other): it owns the base model's lifecycle and attaches
what :func:`~deepsynth.serving.sources.fetch_adapter` verified, under the names of a
:class:`~deepsynth.serving.slots.SlotTable`. Everything that touches the model (attaching,
detaching, generating) holds :attr:`AdapterHolder.lock`: a swap attaches the new adapter, reroutes
the name and deletes the old adapter between two batches.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import threading
import warnings
from typing import Any

import torch

from deepsynth.errors import ConfigError
from deepsynth.inference.loading import LoadedModel, attach_adapter
from deepsynth.models.dtypes import DTYPES
from deepsynth.models.loading import load_base_model
from deepsynth.serving.slots import AdapterSlot, SlotTable
from deepsynth.serving.sources import fetch_adapter

logger = logging.getLogger(__name__)


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
        self.table = SlotTable()
        self._ids = itertools.count()
        self._source: Any = None

    def slots(self) -> list[AdapterSlot]:
        """The served adapters, in load order."""
        return self.table.all()

    def resolve(self, key: str | None) -> AdapterSlot:
        """The slot a request names (see :meth:`SlotTable.resolve`)."""
        return self.table.resolve(key)

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
            source = fetch_adapter(ref, work_dir)
            with self.lock:
                self._ensure_base(source.trainer_config, ref)
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
                )
                old = self.table.put(slot)
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
