"""``ModelServer``: the engine (holder + batcher) and the alias poller behind one object, free of HTTP.

:meth:`ModelServer.summarize` is what ``POST /v1/summarize`` does, free of HTTP: render or decode the
input, check its size, queue it, wait (bounded) for its batch. The HTTP side is
:mod:`deepsynth.serving.app` (routes) and :mod:`deepsynth.serving.http` (the socket and uvicorn).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from deepsynth.serving.batcher import Batcher, Job, JobResult, QueueFullError
from deepsynth.serving.config import ServeConfig
from deepsynth.serving.holder import AdapterHolder
from deepsynth.serving.hot_swap import AliasPoller
from deepsynth.serving.inputs import RequestError, check_text, decode_pages
from deepsynth.serving.slots import UnknownAdapterError, parse_model_option
from deepsynth.serving.sources import pin

logger = logging.getLogger(__name__)


class ModelServer:
    """One base model with its adapters, batching and alias polling.

    Args:
        config: Limits, batching and polling settings.
        home: DeepSynth cache root (for the ``tiny`` base profile).
    """

    def __init__(self, config: ServeConfig | None = None, home: str | os.PathLike | None = None):
        self.config = config or ServeConfig()
        self.holder = AdapterHolder(self.config.device, home)
        self.batcher = Batcher(self.holder, self.config.max_batch_size, self.config.max_wait_ms, self.config.max_queue)
        self.poller = AliasPoller(self.holder, self.config.poll_interval_s)
        self.started = time.time()

    def start(self, models: Sequence[str] = ()) -> ModelServer:
        """Load each ``[NAME=]REF`` of ``models`` (verified), then start batching and polling."""
        for value in models:
            name, ref = parse_model_option(value)
            self.holder.load(ref, name)
        self.batcher.start()
        self.poller.start()
        return self

    def ready(self) -> bool:
        """True when an adapter is loaded and the batch worker runs."""
        return bool(self.holder.slots()) and self.batcher.alive()

    def summarize(
        self,
        *,
        text: str | None = None,
        pages: list[str] | None = None,
        adapter: str | None = None,
        instruction: str | None = None,
        max_new_tokens: int | None = None,
        no_repeat_ngram_size: int = 0,
    ) -> dict[str, Any]:
        """Summarize one document given as text or base64 page images.

        Returns:
            ``{"summary", "adapter": {name, version, sha256, ...}, "tokens", "timings": {...}}``.

        Raises:
            RequestError: Bad or oversized input (400/413), unknown adapter (404), full queue (429),
                not ready (503), timeout (504).
        """
        began = time.perf_counter()
        if (text is None) == (pages is None):
            raise RequestError(400, "give exactly one of text or pages")
        limit = max_new_tokens or self.config.default_max_new_tokens
        if not 1 <= limit <= self.config.max_new_tokens:
            raise RequestError(400, f"max_new_tokens: must be within 1-{self.config.max_new_tokens}")
        if not self.ready():
            raise RequestError(503, "no adapter is loaded yet")
        try:
            slot = self.holder.resolve(adapter)
        except UnknownAdapterError as exc:
            raise RequestError(404, str(exc)) from None
        if text is not None:
            check_text(text, self.config)
            images = slot.render(text, instruction)
        else:
            images = decode_pages(pages or [], self.config)
        prepared = time.perf_counter()
        job = Job(slot.name, images, slot.mode, instruction, limit, no_repeat_ngram_size)
        try:
            future = self.batcher.submit(job)
        except QueueFullError as exc:
            raise RequestError(429, f"server busy: {exc}") from None
        timeout = self.config.request_timeout_s - (prepared - began)
        try:
            result: JobResult = future.result(timeout=max(timeout, 0.001))
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise RequestError(504, f"no answer within request_timeout_s={self.config.request_timeout_s}") from None
        except UnknownAdapterError as exc:
            raise RequestError(404, str(exc)) from None
        total = time.perf_counter() - began
        return {
            "summary": result.text,
            "adapter": result.adapter,
            "tokens": len(result.token_ids),
            "pages": len(images),
            "timings": {
                "prepare_ms": 1000 * (prepared - began),
                "queue_ms": 1000 * result.queue_s,
                "generate_ms": 1000 * result.generate_s,
                "total_ms": 1000 * total,
                "batch_size": result.batch_size,
                "batch": result.batch,
            },
        }

    def load_adapter(self, name: str, ref: str) -> dict[str, Any]:
        """Load ``ref`` as ``name`` (``POST /v1/load_lora_adapter``); an unmoved alias already served is kept.

        Returns:
            ``{"status": "loaded" | "swapped" | "unchanged", "adapter": {...}}``.
        """
        current = next((s for s in self.holder.slots() if s.name == name), None)
        if current is not None and current.ref == ref and current.registry_name:
            if pin(ref).version == current.version:
                return {"status": "unchanged", "adapter": current.info()}
        slot = self.holder.load(ref, name)
        return {"status": "swapped" if current is not None else "loaded", "adapter": slot.info()}

    def stop(self) -> None:
        """Stop polling and batching, remove downloaded packages."""
        self.poller.stop()
        self.batcher.stop()
        self.holder.close()
