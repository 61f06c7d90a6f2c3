"""Concurrent requests → batches: a bounded queue and one worker thread that owns the model.

The worker takes the first waiting request, gathers more for up to ``max_wait_ms`` (at most
``max_batch_size``), resolves each request's adapter at that moment (so a swap lands between two
batches, never inside one) and decodes the batch with the one decode loop,
:func:`deepsynth.inference.generation.decode`, each row with its own peft adapter. Prompts are built
as for a lone adapter; the batch decodes once for the longest ``max_new_tokens`` asked and each
document's ids are cut to its own limit, which for greedy decoding is exactly what a run with that
limit gives. Requests whose
caller gave up (timed out) before their batch started are skipped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from deepsynth.inference.config import GenerationConfig
from deepsynth.inference.generation import as_document, decode, prompt_embeddings
from deepsynth.serving.holder import AdapterHolder
from deepsynth.serving.slots import AdapterSlot, UnknownAdapterError

logger = logging.getLogger(__name__)


class QueueFullError(Exception):
    """The queue holds ``max_queue`` requests already."""


@dataclass
class Job:
    """One summarization request waiting for its batch."""

    adapter: str | None
    pages: list[bytes]
    mode: str
    instruction: str | None
    max_new_tokens: int
    no_repeat_ngram_size: int = 0
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class JobResult:
    """What a job produced, which adapter slot produced it, and how long each part took."""

    text: str
    token_ids: list[int]
    adapter: dict[str, Any]
    queue_s: float
    generate_s: float
    batch_size: int
    batch: int


class Batcher:
    """Groups jobs into batches for the model in ``holder``.

    Args:
        holder: The model and its adapters.
        max_batch_size: Most jobs per batch.
        max_wait_ms: How long the first job of a batch waits for company.
        max_queue: Most waiting jobs; :meth:`submit` raises :class:`QueueFullError` beyond.
    """

    def __init__(self, holder: AdapterHolder, max_batch_size: int = 8, max_wait_ms: float = 10.0, max_queue: int = 64):
        self.holder = holder
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self._queue: queue.Queue[Job] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deepsynth-batcher", daemon=True)
        self.batches = 0
        self.submitted = 0

    def pending(self) -> int:
        """Jobs waiting for a batch."""
        return self._queue.qsize()

    def start(self) -> Batcher:
        """Start the worker thread."""
        self._thread.start()
        return self

    def alive(self) -> bool:
        """True while the worker runs."""
        return self._thread.is_alive()

    def submit(self, job: Job) -> Future:
        """Queue ``job``; its future resolves to a :class:`JobResult` (or the batch's error)."""
        try:
            self._queue.put_nowait(job)
            self.submitted += 1
        except queue.Full:
            raise QueueFullError(f"{self._queue.maxsize} requests are waiting already") from None
        return job.future

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker after its current batch; jobs still queued fail."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(RuntimeError("the server is shutting down"))

    def _gather(self) -> list[Job]:
        try:
            first = self._queue.get(timeout=0.1)
        except queue.Empty:
            return []
        jobs, deadline = [first], time.perf_counter() + self.max_wait_s
        while len(jobs) < self.max_batch_size:
            left = deadline - time.perf_counter()
            try:
                jobs.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return [j for j in jobs if j.future.set_running_or_notify_cancel()]

    def _run(self) -> None:
        while not self._stop.is_set():
            jobs = self._gather()
            for key in sorted({j.no_repeat_ngram_size for j in jobs}):
                self._decode([j for j in jobs if j.no_repeat_ngram_size == key], key)

    def _decode(self, jobs: list[Job], no_repeat_ngram_size: int) -> None:
        with self.holder.lock:  # a swap waits for this batch; this batch waits for a swap in progress
            ready: list[tuple[Job, AdapterSlot]] = []
            for job in jobs:
                try:
                    ready.append((job, self.holder.resolve(job.adapter)))
                except UnknownAdapterError as exc:  # unloaded while the job waited
                    job.future.set_exception(exc)
            if not ready:
                return
            began = time.perf_counter()
            try:
                outputs = self._generate(ready, no_repeat_ngram_size)
            except Exception as exc:  # noqa: BLE001 - every caller of the batch gets the error
                logger.exception("batch of %d failed", len(ready))
                for job, _slot in ready:
                    job.future.set_exception(exc)
                return
            self.batches += 1
            number = self.batches
            infos = [(job, slot.info()) for job, slot in ready]
        took = time.perf_counter() - began
        for (job, info), (text, ids) in zip(infos, outputs):
            job.future.set_result(JobResult(text, ids, info, began - job.enqueued, took, len(ready), number))

    @torch.no_grad()
    def _generate(self, ready: list[tuple[Job, AdapterSlot]], no_repeat_ngram_size: int) -> list[tuple[str, list[int]]]:
        """``(summary, token ids)`` per job, decoded together, each with its slot's adapter."""
        model, tokenizer = self.holder.model, self.holder.tokenizer
        device = next(model.parameters()).device
        rows = [
            prompt_embeddings(slot.loaded, as_document(job.pages, job.mode, job.instruction, i), device)
            for i, (job, slot) in enumerate(ready)
        ]
        limits = [job.max_new_tokens for job, _slot in ready]
        config = GenerationConfig(max_new_tokens=max(limits), no_repeat_ngram_size=no_repeat_ngram_size)
        ids = decode(model, tokenizer, rows, config, limits=limits, adapter_names=[s.peft_name for _j, s in ready])
        return [(tokenizer.decode(row, skip_special_tokens=True).strip(), row) for row in ids]
