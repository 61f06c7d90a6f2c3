"""Follow registry aliases: when a served ``models:/NAME@ALIAS`` moves, load the new version beside the old.

The download and verification run in the poller's thread while the old version keeps serving;
:meth:`AdapterHolder.load` then attaches the new one and reroutes the name between two batches.
"""

from __future__ import annotations

import logging
import threading

from deepsynth.serving.holder import AdapterHolder
from deepsynth.serving.slots import AdapterSlot

logger = logging.getLogger(__name__)


def alias_moved(slot: AdapterSlot) -> str | None:
    """The version ``slot``'s alias points at now, when it is not the one served (else ``None``)."""
    if not (slot.registry_name and slot.alias):
        return None
    from deepsynth.registry.refs import ModelRef

    current = str(ModelRef.registry(f"{slot.registry_name}@{slot.alias}").version_record().version)
    return current if current != slot.version else None


class AliasPoller:
    """A thread that checks every served alias each ``interval_s`` seconds and swaps moved ones in.

    Args:
        holder: The served adapters.
        interval_s: Seconds between checks.
    """

    def __init__(self, holder: AdapterHolder, interval_s: float):
        self.holder = holder
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deepsynth-alias-poller", daemon=True)
        self.swaps = 0
        self.last_error: str | None = None

    def start(self) -> AliasPoller:
        """Start polling (a no-op thread when the interval is 0)."""
        if self.interval_s > 0:
            self._thread.start()
        return self

    def check_once(self) -> list[AdapterSlot]:
        """Check every served alias now; return the slots swapped in."""
        swapped = []
        for slot in self.holder.slots():
            try:
                version = alias_moved(slot)
                if version is not None:
                    logger.info("%s@%s moved to version %s: loading it", slot.registry_name, slot.alias, version)
                    swapped.append(self.holder.load(slot.ref, slot.name))
                    self.swaps += 1
            except Exception as exc:  # noqa: BLE001 - the old version keeps serving; try again next round
                self.last_error = f"{slot.name}: {exc}"
                logger.warning("alias check of %s failed (still serving version %s): %s", slot.name, slot.version, exc)
        return swapped

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check_once()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
