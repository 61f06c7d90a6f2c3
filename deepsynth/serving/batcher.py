"""Concurrent requests → batches: a bounded queue and one worker thread that owns the model.

The worker takes the first waiting request and gathers more while they keep coming: it waits up to
``max_wait_ms`` for the next one, again after each arrival, for ``max_gather_ms`` in all (at most
``max_batch_size``). Clients that answer a batch's results with new requests at once arrive a few
milliseconds apart (each is parsed in turn), so a fixed wait from the first would start a
half-full batch and leave the rest for the next. Then it resolves each request's adapter at that
moment (so a swap lands between two batches, never inside one) and decodes the batch with the one
decode loop, :func:`deepsynth.inference.generation.decode`, each row with its own peft adapter.
Prompts are built as for a lone adapter; a :class:`~deepsynth.serving.decoding.StepWatch` stops each row at its own
``max_new_tokens`` (for greedy decoding exactly what a run with that limit gives), at a stop string,
or when its caller gave up. Requests past their deadline before their batch starts are dropped.

One request never fails another: each prompt is built on its own (a request the tokenizer refuses
fails alone), and a batch whose decoding raises is decoded again one request at a time. Requests
decode together only with the same sampling settings; a request with a ``seed`` decodes alone, so
the seed alone decides its answer.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from deepsynth.inference.config import GenerationConfig
from deepsynth.inference.generation import as_document, decode, prompt_embeddings
from deepsynth.serving.decoding import StepWatch, final_text
from deepsynth.serving.holder import AdapterHolder
from deepsynth.serving.slots import AdapterSlot, UnknownAdapterError

logger = logging.getLogger(__name__)


class QueueFullError(Exception):
    """The queue holds ``max_queue`` requests already."""


class DeadlineExceeded(Exception):
    """The request's caller gave up (its deadline passed, or a streaming client left): its work stopped."""


@dataclass
class Job:
    """One summarization request waiting for its batch.

    Attributes:
        generation: Its decoding settings (``max_new_tokens``, n-gram rule, greedy or sampling).
        seeded: Sampling with ``generation.seed``: decodes alone so the seed decides the answer.
        stop: Stop strings (the answer ends before the first one).
        deadline: ``time.perf_counter()`` after which nobody waits for the answer.
        on_text: Called from the worker with each new piece of the answer (streaming).
    """

    adapter: str | None
    pages: list[bytes]
    mode: str
    instruction: str | None
    generation: GenerationConfig
    seeded: bool = False
    stop: tuple[str, ...] = ()
    deadline: float = math.inf
    on_text: Callable[[str], None] | None = None
    abandoned: bool = False
    received: float = field(default_factory=time.perf_counter)  # when the request arrived (latency metrics)
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)

    def abandon(self) -> None:
        """Nobody waits for this job any more: drop it before its batch, or stop its row mid-decode."""
        self.abandoned = True
        self.future.cancel()

    def expired(self) -> bool:
        """True when the caller gave up."""
        return self.abandoned or time.perf_counter() > self.deadline

    def batch_key(self) -> tuple[Any, ...]:
        """Jobs decode together only when these settings agree."""
        g = self.generation
        if g.greedy:
            return (g.no_repeat_ngram_size, True)
        return (g.no_repeat_ngram_size, False, g.temperature, g.top_p, id(self) if self.seeded else 0)


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
    prompt_tokens: int = 0
    finish_reason: str = "stop"


class Batcher:
    """Groups jobs into batches for the model in ``holder``.

    Args:
        holder: The model and its adapters.
        max_batch_size: Most jobs per batch.
        max_wait_ms: How long a forming batch waits for its next job (restarted by each arrival).
        max_queue: Most waiting jobs; :meth:`submit` raises :class:`QueueFullError` beyond.
        max_gather_ms: How long a batch gathers in all.
    """

    def __init__(
        self,
        holder: AdapterHolder,
        max_batch_size: int = 8,
        max_wait_ms: float = 10.0,
        max_queue: int = 64,
        max_gather_ms: float = 100.0,
    ) -> None:
        self.holder = holder
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.max_gather_s = max(max_gather_ms, max_wait_ms) / 1000
        self._queue: queue.Queue[Job] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deepsynth-batcher", daemon=True)
        self.batches = 0
        self.submitted = 0
        self.dropped = 0  # jobs whose caller gave up before their batch started
        self.last_steps = 0  # decoding steps of the last batch
        self.running_adapters: list[str] = []
        self._running: list[Job] = []
        self._gathered: list[Job] = []  # taken from the queue, waiting for the model (e.g. during a swap)
        self.on_batch: Callable[[int], None] | None = None  # called with each batch's size (metrics)

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
        jobs = self._gathered = [first]  # visible to waiting_adapters() while the batch fills
        last_call = time.perf_counter() + self.max_gather_s
        while len(jobs) < self.max_batch_size:
            left = min(self.max_wait_s, last_call - time.perf_counter())
            try:
                jobs.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        kept = [j for j in jobs if j.future.set_running_or_notify_cancel()]
        self.dropped += len(jobs) - len(kept)
        return kept

    def _run(self) -> None:
        while not self._stop.is_set():
            jobs = self._gathered = self._gather()
            groups: dict[tuple[Any, ...], list[Job]] = {}
            for job in jobs:
                groups.setdefault(job.batch_key(), []).append(job)
            for group in groups.values():
                try:
                    self._decode(group)
                except Exception as exc:  # noqa: BLE001 - the worker must outlive any one batch
                    logger.exception("batch of %d failed", len(group))
                    for job in group:
                        _fail(job, exc)
            self._gathered = []

    def waiting_adapters(self) -> list[str]:
        """Adapter names of the jobs waiting for the model: queued, or gathered for a batch not started (metrics)."""
        with self._queue.mutex:
            queued = [job.adapter or "" for job in self._queue.queue]
        return queued + [
            job.adapter or "" for job in self._gathered if not job.future.done() and job not in self._running
        ]

    def _decode(self, jobs: list[Job]) -> None:
        with self.holder.lock:  # a swap waits for this batch; this batch waits for a swap in progress
            ready: list[tuple[Job, AdapterSlot, torch.Tensor]] = []
            device = next(self.holder.model.parameters()).device if self.holder.model is not None else None
            for i, job in enumerate(jobs):
                if job.expired():
                    _fail(job, DeadlineExceeded("the request's deadline passed before its batch started"))
                    self.dropped += 1
                    continue
                try:
                    slot = self.holder.resolve(job.adapter)
                    doc = as_document(job.pages, job.mode, job.instruction, i)
                    ready.append((job, slot, prompt_embeddings(slot.loaded, doc, device)))
                except Exception as exc:  # noqa: BLE001 - this request fails alone (unloaded adapter, bad input)
                    if not isinstance(exc, UnknownAdapterError):
                        logger.warning("request refused while building its prompt: %s", exc)
                    _fail(job, exc)
            if ready:
                self.running_adapters = sorted({slot.name for _job, slot, _row in ready})
                self._running = [job for job, _slot, _row in ready]
                try:
                    self._decode_rows(ready)
                finally:
                    self.running_adapters, self._running = [], []

    def _decode_rows(self, ready: list[tuple[Job, AdapterSlot, torch.Tensor]]) -> None:
        began = time.perf_counter()
        try:
            outputs = self._generate(ready)
        except Exception as exc:  # noqa: BLE001 - retried one by one, so one bad request fails alone
            if len(ready) == 1:
                logger.exception("request failed while decoding")
                _fail(ready[0][0], exc)
                return
            logger.warning("batch of %d failed (%s); decoding its requests one at a time", len(ready), exc)
            for item in ready:
                self._decode_rows([item])
            return
        self.batches += 1
        number = self.batches
        if self.on_batch is not None:
            self.on_batch(len(ready))
        took = time.perf_counter() - began
        for (job, slot, row), (text, ids, reason) in zip(ready, outputs):
            if reason == "abandoned":
                _fail(job, DeadlineExceeded("the request's caller gave up; its decoding stopped"))
                continue
            result = JobResult(
                text, ids, slot.info(), began - job.enqueued, took, len(ready), number, int(row.shape[0]), reason
            )
            if not job.future.done():
                job.future.set_result(result)

    @torch.no_grad()
    def _generate(self, ready: list[tuple[Job, AdapterSlot, torch.Tensor]]) -> list[tuple[str, list[int], str]]:
        """``(answer, token ids, finish reason)`` per job, decoded together, each with its slot's adapter."""
        model, tokenizer = self.holder.model, self.holder.tokenizer
        jobs = [job for job, _slot, _row in ready]
        settings = jobs[0].generation
        limits = [job.generation.max_new_tokens for job in jobs]
        config = GenerationConfig(**{**settings.to_dict(), "max_new_tokens": max(limits)})
        if jobs[0].seeded:
            torch.manual_seed(settings.seed)
        watch = StepWatch(jobs, tokenizer)
        ids = decode(
            model,
            tokenizer,
            [row for _job, _slot, row in ready],
            config,
            limits=limits,
            adapter_names=[slot.peft_name for _job, slot, _row in ready],
            on_step=watch,
        )
        self.last_steps = watch.steps
        outputs = []
        for job, state, row in zip(jobs, watch.rows, ids):
            text, hit = final_text(tokenizer, row, job.stop)
            state.emit(text)
            reason = "stop" if hit else state.reason or ("length" if len(row) >= state.limit else "eos")
            outputs.append((text, row, "length" if reason == "length" else reason))
        return outputs


def _fail(job: Job, exc: BaseException) -> None:
    """Fail ``job``'s future with ``exc`` unless it is settled (or cancelled) already."""
    if job.future.done() or not (job.future.running() or job.future.set_running_or_notify_cancel()):
        return
    job.future.set_exception(exc)
