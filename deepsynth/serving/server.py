"""``ModelServer``: the engine (holder + batcher), the alias poller and the metrics behind one object, free of HTTP.

:meth:`ModelServer.submit` is what every generating endpoint does first: check the request, pick (or
load on demand) its adapter, render or decode the input, and queue it with its decoding settings,
which default to the ones the adapter's package records (as ``deepsynth summarize``, ``inference.py``,
the pyfunc model and evaluation use them). :meth:`ModelServer.wait` and :meth:`ModelServer.stream`
then wait for the answer, bounded by ``request_timeout_s``; a caller that gives up stops its work.
The HTTP side is :mod:`deepsynth.serving.app` and :mod:`deepsynth.serving.openai_api`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from deepsynth.errors import ConfigError
from deepsynth.inference.config import GenerationConfig
from deepsynth.serving.batcher import Batcher, DeadlineExceeded, Job, JobResult, QueueFullError
from deepsynth.serving.config import ServeConfig
from deepsynth.serving.holder import AdapterCapacityError, AdapterHolder
from deepsynth.serving.hot_swap import AliasPoller
from deepsynth.serving.inputs import RequestError, check_request, decode_pages
from deepsynth.serving.metrics import ServerMetrics
from deepsynth.serving.requests import DecodingRequest
from deepsynth.serving.slots import AdapterSlot, AmbiguousAdapterError, UnknownAdapterError, parse_model_option
from deepsynth.serving.sources import pin

logger = logging.getLogger(__name__)

_DONE = object()


class ModelServer:
    """One base model with its adapters, batching, alias polling and metrics.

    Args:
        config: Limits, batching, residency and polling settings.
        home: DeepSynth cache root (for the ``tiny`` base profile).
    """

    def __init__(self, config: ServeConfig | None = None, home: str | os.PathLike | None = None):
        self.config = config or ServeConfig()
        self.holder = AdapterHolder(self.config.device, home, self.config.max_loras)
        self.batcher = Batcher(
            self.holder,
            self.config.max_batch_size,
            self.config.max_wait_ms,
            self.config.max_queue,
            self.config.max_gather_ms,
        )
        self.poller = AliasPoller(self.holder, self.config.poll_interval_s)
        self.metrics = ServerMetrics(self)
        self.batcher.on_batch = self.metrics.observe_batch
        self.started = time.time()
        self._loading: dict[str, threading.Lock] = {}
        self._loading_guard = threading.Lock()

    def start(self, models: Sequence[str] = ()) -> ModelServer:
        """Load each ``[NAME=]REF`` of ``models`` (verified, pinned), then start batching and polling."""
        if len(models) > self.config.max_loras:
            raise ConfigError(f"{len(models)} --model adapters, but max_loras is {self.config.max_loras}")
        for value in models:
            name, ref = parse_model_option(value)
            self.holder.load(ref, name, pinned=True)
        self.batcher.start()
        self.poller.start()
        return self

    def ready(self) -> bool:
        """True when an adapter is loaded and the batch worker runs."""
        return bool(self.holder.slots()) and self.batcher.alive()

    def base_model(self) -> str:
        """The shared base model's name (what ``/v1/models`` lists adapters under)."""
        return str(self.holder.base_key[0]) if self.holder.base_key else "base"

    # -- adapters ---------------------------------------------------------------------------------

    def slot_for(self, model: str | None) -> AdapterSlot:
        """The adapter a request names, claimed for it (release with ``holder.release``); a registered model in
        ``allow_model`` that is not resident is loaded now (waiting, up to the timeout, for a slot to free up).

        Raises:
            RequestError: 404 nothing served or allowed matches, 409 several match, 503 no room.
        """
        try:
            return self.holder.claim(model)
        except AmbiguousAdapterError as exc:
            raise RequestError(409, str(exc)) from None
        except UnknownAdapterError as exc:
            ref = self._on_demand_ref(model)
            if ref is None:
                raise RequestError(404, str(exc)) from None
        with self._load_lock(model or ""):
            try:
                return self.holder.claim(model)
            except UnknownAdapterError:
                pass
            deadline = time.monotonic() + self.config.request_timeout_s
            while True:
                try:
                    slot = self.holder.load(ref, model, claim=True)
                    break
                except AdapterCapacityError as exc:  # every slot busy: wait for one to free up, up to the timeout
                    if time.monotonic() > deadline:
                        raise RequestError(503, str(exc)) from None
                    time.sleep(0.02)
                except ConfigError as exc:
                    raise RequestError(404, f"model {model!r}: {exc}") from None
            self.metrics.on_demand_loads.inc()
            return slot

    def _on_demand_ref(self, model: str | None) -> str | None:
        """``models:/NAME@ALIAS`` (or ``/VERSION``) for a ``model`` whose registered NAME is in ``allow_model``."""
        text = (model or "").removeprefix("models:/")
        name = text.split("@", 1)[0].split("/", 1)[0]
        if not name or name == text or name not in self.config.allow_model:
            return None
        return f"models:/{text}"

    def _load_lock(self, name: str) -> threading.Lock:
        with self._loading_guard:
            return self._loading.setdefault(name, threading.Lock())

    def load_adapter(self, name: str, ref: str, pinned: bool = False) -> dict[str, Any]:
        """Load ``ref`` as ``name`` (``POST /v1/load_lora_adapter``); an unmoved alias already served is kept.

        Returns:
            ``{"status": "loaded" | "swapped" | "unchanged", "adapter": {...}}``.
        """
        current = self.holder.table.get(name)
        if current is not None and current.ref == ref and current.registry_name:
            if pin(ref).version == current.version:
                return {"status": "unchanged", "adapter": current.info()}
        try:
            slot = self.holder.load(ref, name, pinned=pinned)
        except AdapterCapacityError as exc:
            raise RequestError(503, str(exc)) from None
        return {"status": "swapped" if current is not None else "loaded", "adapter": slot.info()}

    # -- requests ---------------------------------------------------------------------------------

    def submit(self, request: DecodingRequest, on_text: Callable[[str], None] | None = None) -> Job:
        """Check ``request``, pick its adapter, prepare its pages and queue it.

        Raises:
            RequestError: Bad or oversized input (400/413), unknown (404) or ambiguous (409) adapter,
                full queue (429), not ready or no room for its adapter (503).
        """
        began = time.perf_counter()
        if (request.text is None) == (request.pages is None):
            raise RequestError(400, "give exactly one of text or pages")
        # Sizes and Unicode of every text field before anything is queued (a lone surrogate would make the
        # tokenizer raise inside the batch; a huge instruction would make attention huge).
        check_request(
            self.config, self.holder.tokenizer, text=request.text, instruction=request.instruction, stop=request.stop
        )
        if request.max_new_tokens is not None and not 1 <= request.max_new_tokens <= self.config.max_new_tokens:
            raise RequestError(
                400, f"max_new_tokens: must be within 1-{self.config.max_new_tokens} (got {request.max_new_tokens})"
            )
        if not self.ready():
            raise RequestError(503, "no adapter is loaded yet")
        slot = self.slot_for(request.adapter)
        try:
            job = self._job(slot, request, began, on_text)
        except BaseException:
            self.holder.release(slot)
            raise
        job.future.add_done_callback(lambda _f: self.holder.release(slot))
        try:
            self.batcher.submit(job)
        except QueueFullError as exc:
            job.abandon()
            raise RequestError(429, f"server busy: {exc}") from None
        return job

    def _job(
        self, slot: AdapterSlot, request: DecodingRequest, began: float, on_text: Callable[[str], None] | None
    ) -> Job:
        """The queued form of ``request`` for ``slot``: its pages and decoding settings."""
        if request.text is not None:
            images = slot.render(request.text, request.instruction)
        else:
            images = decode_pages(request.pages or [], self.config)
        generation, seeded = self._settings(slot, request)
        return Job(
            slot.name,
            images,
            slot.mode,
            request.instruction,
            generation,
            seeded=seeded,
            stop=tuple(request.stop),
            deadline=began + self.config.request_timeout_s,
            on_text=on_text,
            received=began,
        )

    def _settings(self, slot: AdapterSlot, request: DecodingRequest) -> tuple[GenerationConfig, bool]:
        """The package's recorded decoding settings with what the request sets on top; and whether seeded."""
        recorded = slot.generation or GenerationConfig(max_new_tokens=self.config.default_max_new_tokens)
        values = {**recorded.to_dict(), "batch_size": 1}
        values["max_new_tokens"] = request.max_new_tokens or min(recorded.max_new_tokens, self.config.max_new_tokens)
        if request.no_repeat_ngram_size is not None:
            values["no_repeat_ngram_size"] = request.no_repeat_ngram_size
        if request.temperature is not None:
            values["greedy"] = request.temperature == 0
            values["temperature"] = request.temperature or 1.0
        if request.top_p is not None:
            values["top_p"] = request.top_p
        if request.seed is not None:
            values["seed"] = request.seed
        settings = GenerationConfig(**values)
        return settings, not settings.greedy and request.seed is not None

    def wait(self, job: Job) -> JobResult:
        """The job's result, waiting at most until its deadline (then its work stops and 504 is raised)."""
        try:
            result = job.future.result(timeout=max(job.deadline - time.perf_counter(), 0.001))
        except (concurrent.futures.TimeoutError, DeadlineExceeded, concurrent.futures.CancelledError):
            job.abandon()
            raise RequestError(504, f"no answer within request_timeout_s={self.config.request_timeout_s}") from None
        except UnknownAdapterError as exc:
            raise RequestError(404, str(exc)) from None
        self.metrics.observe_result(job, result)
        return result

    def stream(self, job_request: DecodingRequest) -> tuple[Job, Iterator[str | JobResult]]:
        """Submit ``job_request`` and iterate over its answer: text pieces as they are decoded, then the
        :class:`JobResult`. Closing the iterator early (the client left) stops the job's work."""
        pieces: queue.Queue[Any] = queue.Queue()
        job = self.submit(job_request, on_text=pieces.put)
        job.future.add_done_callback(lambda _f: pieces.put(_DONE))

        def events() -> Iterator[str | JobResult]:
            try:
                while True:
                    try:
                        item = pieces.get(timeout=max(job.deadline - time.perf_counter(), 0.001))
                    except queue.Empty:
                        item = None
                    if item is _DONE or item is None:
                        yield self.wait(job)
                        return
                    yield item
            finally:
                if not job.future.done():
                    job.abandon()

        return job, events()

    def summarize(self, **fields: Any) -> dict[str, Any]:
        """``POST /v1/summarize``: one document given as text or base64 page images.

        Returns:
            ``{"summary", "adapter": {name, version, sha256, ...}, "tokens", "pages", "timings": {...}}``.
        """
        began = time.perf_counter()
        request = DecodingRequest(**fields)
        job = self.submit(request)
        result = self.wait(job)
        return {
            "summary": result.text,
            "adapter": result.adapter,
            "tokens": len(result.token_ids),
            "pages": len(job.pages),
            "finish_reason": result.finish_reason,
            "timings": {
                "queue_ms": 1000 * result.queue_s,
                "generate_ms": 1000 * result.generate_s,
                "total_ms": 1000 * (time.perf_counter() - began),
                "batch_size": result.batch_size,
                "batch": result.batch,
            },
        }

    def stop(self) -> None:
        """Stop polling and batching, remove downloaded packages."""
        self.poller.stop()
        self.batcher.stop()
        self.holder.close()
