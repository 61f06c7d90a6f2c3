"""Retry transient failures (I/O hiccups, HTTP 5xx from a tracking server) with exponential backoff.

Deterministic failures — bad config, bad data, a missing file, a 4xx answer — are raised at
once: retrying them only delays the error message.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from deepsynth.errors import DeepSynthError

T = TypeVar("T")
logger = logging.getLogger(__name__)

_DETERMINISTIC_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


def http_status(error: BaseException) -> int | None:
    """The HTTP status an error carries (requests / MLflow REST errors), if any."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None) or getattr(error, "status_code", None)
    if status is None:
        code = getattr(error, "get_http_status_code", None)
        status = code() if callable(code) else None
    return int(status) if isinstance(status, int) else None


def is_transient(error: BaseException) -> bool:
    """True for errors worth retrying: connection/timeouts, other I/O errors, HTTP 429 and 5xx."""
    if isinstance(error, DeepSynthError) or isinstance(error, _DETERMINISTIC_OS_ERRORS):
        return False
    status = http_status(error)
    if status is not None:
        return status == 429 or status >= 500
    return isinstance(error, (ConnectionError, TimeoutError, OSError))


def retry_transient(
    fn: Callable[[], T],
    *,
    attempts: int = 4,
    base_delay: float = 1.0,
    max_delay: float = 30.0,
    what: str = "operation",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds, retrying transient errors with exponential backoff and jitter.

    Args:
        fn: The call to make.
        attempts: Total tries, the first included.
        base_delay: Delay before the first retry, in seconds; doubles each time up to ``max_delay``.
        what: Name used in log messages.
        sleep: Injected for tests.

    Raises:
        The last error when every attempt failed, or the first non-transient error at once.
    """
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as error:  # noqa: BLE001 - classified below, re-raised when not transient
            if attempt == attempts or not is_transient(error):
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            logger.warning(
                "%s failed (%s: %s); retry %d/%d in %.1f s",
                what,
                type(error).__name__,
                error,
                attempt,
                attempts - 1,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")
