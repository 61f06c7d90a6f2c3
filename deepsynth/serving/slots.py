"""Names → slots: the adapters a server answers for, and how a request's ``adapter`` picks one.

A slot is what serving knows of one attached adapter: the served name, where it came from
(reference, registry name, version, alias), its sha256, and the peft adapter name it decodes with.
Importing this module is cheap (the command line parses ``--model NAME=REF`` with it before torch loads).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepsynth.errors import DeepSynthError
from deepsynth.inference.documents import render_text

if TYPE_CHECKING:
    from deepsynth.inference.config import GenerationConfig
    from deepsynth.inference.loading import LoadedModel
    from deepsynth.rendering.config import RenderSettings
    from deepsynth.rendering.renderer import DocumentRenderer


def parse_model_option(value: str) -> tuple[str | None, str]:
    """``NAME=REF`` → ``(NAME, REF)``; a bare ``REF`` → ``(None, REF)`` (served under the ref itself)."""
    name, sep, ref = value.partition("=")
    if sep and name and "/" not in name and ":" not in name:
        return name, ref
    return None, value


class UnknownAdapterError(DeepSynthError):
    """A request named no adapter that is served."""


class AmbiguousAdapterError(DeepSynthError):
    """A request's adapter reference matches several served adapters (HTTP 409); ``candidates`` names them."""

    def __init__(self, key: str, candidates: list[str]):
        super().__init__(f"adapter {key!r} is ambiguous: it matches {', '.join(candidates)}; name one of them")
        self.candidates = candidates


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
    render_settings: RenderSettings | None = None  # read right after verification, never later
    generation: GenerationConfig | None = None  # the package's recorded decoding settings
    pinned: bool = False  # never evicted to make room (see AdapterHolder's max_loras)
    last_used: float = field(default_factory=time.monotonic)
    in_flight: int = 0  # requests queued or decoding with this adapter (not evicted meanwhile)
    renderer: DocumentRenderer | None = None
    render_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def mode(self) -> str:
        """Rendering mode of the adapter's training data."""
        return self.loaded.mode or (self.render_settings.modes[0] if self.render_settings else "base")

    def render(self, text: str, instruction: str | None) -> list[bytes]:
        """The PNG pages ``text`` renders to with the adapter's training render settings."""
        from deepsynth.rendering.renderer import DocumentRenderer

        with self.render_lock:  # one renderer per adapter; its caches are not shared between threads
            if self.renderer is None:
                self.renderer = DocumentRenderer(self.render_settings)
            return render_text(self.renderer, text, instruction)

    def info(self) -> dict[str, Any]:
        """JSON-able description (``GET /v1/adapters`` and every response)."""
        return {
            "name": self.name,
            "ref": self.ref,
            "registry_name": self.registry_name,
            "version": self.version,
            "alias": self.alias,
            "sha256": self.sha256,
            "mode": self.mode,
            "pinned": self.pinned,
            "base_model": self.loaded.trainer_config.get("model_name"),
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
        }


class SlotTable:
    """Served name → :class:`AdapterSlot`, in load order (callers hold the engine's lock to change it)."""

    def __init__(self) -> None:
        self._slots: dict[str, AdapterSlot] = {}

    def __bool__(self) -> bool:
        return bool(self._slots)

    def all(self) -> list[AdapterSlot]:
        """The served adapters, in load order."""
        return list(self._slots.values())

    def get(self, name: str) -> AdapterSlot | None:
        """The slot served as ``name``, if any."""
        return self._slots.get(name)

    def put(self, slot: AdapterSlot) -> AdapterSlot | None:
        """Serve ``slot`` under its name; return the slot it replaces (``None``: a new name)."""
        old = self._slots.get(slot.name)
        self._slots[slot.name] = slot
        return old

    def pop(self, name: str) -> AdapterSlot:
        """Stop serving ``name``.

        Raises:
            UnknownAdapterError: ``name`` is not served.
        """
        slot = self._slots.pop(name, None)
        if slot is None:
            raise UnknownAdapterError(f"adapter {name!r} is not served (see GET /v1/adapters)")
        return slot

    def resolve(self, key: str | None) -> AdapterSlot:
        """The slot a request names: served name, ref, alias, version, ``NAME/VERSION`` or sha256 prefix.

        Args:
            key: What the request gave (``None``: the only adapter, or the first one loaded).

        Also ``NAME@ALIAS`` and ``NAME/VERSION`` with NAME the served or the registered name.

        Raises:
            UnknownAdapterError: Nothing served matches.
            AmbiguousAdapterError: Several served adapters match (the first rule that matches any decides).
        """
        slots = self.all()
        if not slots:
            raise UnknownAdapterError("no adapter is loaded")
        if not key:
            return slots[0]

        def by_alias(s: AdapterSlot) -> bool:
            return bool(s.alias) and key in (
                f"@{s.alias}",
                s.alias,
                f"{s.name}@{s.alias}",
                f"{s.registry_name}@{s.alias}",
            )

        def by_version(s: AdapterSlot) -> bool:
            names = (
                f"{s.registry_name}/{s.version}",
                f"models:/{s.registry_name}/{s.version}",
                f"{s.name}/{s.version}",
            )
            return bool(s.version) and key in (s.version, *names)

        for match in (
            lambda s: key in (s.name, s.ref, s.ref.removeprefix("models:/")),
            by_alias,
            by_version,
            lambda s: len(key) >= 8 and s.sha256.startswith(key),
        ):
            found = [s for s in slots if match(s)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise AmbiguousAdapterError(key, [s.name for s in found])
        raise UnknownAdapterError(f"adapter {key!r} is not served (see GET /v1/models)")
