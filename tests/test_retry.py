"""Transient errors are retried with backoff; deterministic ones are raised at once."""

from __future__ import annotations

import pytest

from deepsynth.errors import ConfigError
from deepsynth.retry import is_transient, retry_transient


class HTTPError(Exception):
    def __init__(self, status):
        super().__init__(f"HTTP {status}")
        self.status_code = status


def flaky(failures):
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return "ok"

    return call, calls


def test_transient_errors_are_retried_with_growing_delays():
    call, calls = flaky([ConnectionError("reset"), HTTPError(503), TimeoutError()])
    delays = []
    assert retry_transient(call, attempts=4, base_delay=1.0, sleep=delays.append) == "ok"
    assert len(calls) == 4
    assert delays[0] < delays[1] < delays[2] and 0.5 <= delays[0] <= 1.0


@pytest.mark.parametrize("error", [ConfigError("bad key"), FileNotFoundError("x"), HTTPError(404), ValueError("bad")])
def test_deterministic_errors_are_not_retried(error):
    call, calls = flaky([error])
    with pytest.raises(type(error)):
        retry_transient(call, sleep=lambda s: None)
    assert len(calls) == 1 and not is_transient(error)


def test_gives_up_after_the_last_attempt():
    call, calls = flaky([HTTPError(502)] * 5)
    with pytest.raises(HTTPError):
        retry_transient(call, attempts=3, sleep=lambda s: None)
    assert len(calls) == 3
