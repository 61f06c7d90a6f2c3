"""How a batch forms: it waits ``max_wait_ms`` for each next request, restarted by every arrival, and
``max_gather_ms`` in all: clients that send their next requests together, parsed a few ms apart, share a batch."""

import threading
import time

from deepsynth.inference.config import GenerationConfig
from deepsynth.serving.batcher import Batcher, Job


def job() -> Job:
    return Job(adapter="a", pages=[], mode="tiny", instruction=None, generation=GenerationConfig())


def arrive(batcher: Batcher, count: int, gap_s: float) -> threading.Thread:
    def send() -> None:
        for _ in range(count):
            batcher.submit(job())
            time.sleep(gap_s)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def test_requests_arriving_closer_than_max_wait_share_one_batch_past_the_first_wait():
    batcher = Batcher(holder=None, max_batch_size=16, max_wait_ms=200, max_gather_ms=5000)
    sender = arrive(batcher, 8, 0.05)  # 8 arrivals over ~350 ms, each 50 ms after the last
    batch = batcher._gather()
    sender.join()
    assert len(batch) == 8


def test_a_gap_longer_than_max_wait_starts_the_batch():
    batcher = Batcher(holder=None, max_batch_size=16, max_wait_ms=20, max_gather_ms=5000)
    sender = arrive(batcher, 3, 0.2)
    first = batcher._gather()
    sender.join()
    assert len(first) == 1 and batcher.pending() == 2


def test_max_gather_ms_bounds_the_wait_of_a_steady_stream():
    batcher = Batcher(holder=None, max_batch_size=64, max_wait_ms=100, max_gather_ms=150)
    sender = arrive(batcher, 40, 0.01)  # a request every 10 ms for 400 ms
    batch = batcher._gather()
    sender.join()
    assert 1 <= len(batch) < 40 and batcher.pending() == 40 - len(batch)  # the batch did not wait for the end
