"""SIGTERM as a request to stop training at the next optimizer step, with a checkpoint (exit code 143)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from deepsynth.errors import Terminated

logger = logging.getLogger(__name__)


class TrainingInterrupted(Terminated):
    """SIGTERM stopped training after a checkpoint was written; rerun with ``resume_from_checkpoint: latest``.

    Exit code 143 (128 + SIGTERM), what schedulers expect from a process that stopped on SIGTERM.
    """

    def __init__(self, message: str, checkpoint: str | None = None):
        super().__init__(message)
        self.checkpoint = checkpoint


class StopOnSignal:
    """Turn SIGTERM into a request to stop at the next optimizer-step boundary.

    ``install()`` (main thread only; elsewhere it does nothing) replaces the SIGTERM handler; the
    first signal sets ``requested`` and logs a warning; the handler then reverts to the default so
    a second SIGTERM terminates at once. ``restore()`` puts the previous handler back.

    The trainer checks ``requested`` after every optimizer step, writes a checkpoint and raises
    :class:`TrainingInterrupted`: the grace period a scheduler must allow is one optimizer step
    plus one checkpoint write (Kubernetes' default terminationGracePeriodSeconds is 30 s).
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM,)):
        self.signals = signals
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        self.requested = signum
        logger.warning(
            "received %s: stopping after the current optimizer step and writing a checkpoint "
            "(send it again to terminate at once)",
            signal.Signals(signum).name,
        )
        signal.signal(signum, signal.SIG_DFL)

    def install(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
