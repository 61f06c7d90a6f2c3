"""Prometheus metrics of one server (its own registry, never the process-global one), served at ``/metrics``.

Per adapter: requests, prompt and generated tokens, latency and queue-time histograms. Server-wide:
queue length, batch sizes, HTTP responses and errors by status, resident adapters, evictions and
on-demand loads, and ``deepsynth_lora_requests_info``, vLLM's ``lora_requests_info`` under this
server's prefix: labels ``running_lora_adapters``, ``waiting_lora_adapters`` (comma-separated served
names) and ``max_lora``, value the scrape time. Kubernetes' Gateway API inference extension routes
on it (``--lora-info-metric deepsynth_lora_requests_info``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

#: The ``Content-Type`` of :meth:`ServerMetrics.render` (Prometheus' text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class _AdapterCollector:
    """Scrape-time figures read from the server: adapters running, waiting, resident, evicted."""

    def __init__(self, server: Any):
        self.server = server

    def collect(self) -> Iterator[Any]:
        server = self.server
        waiting = sorted(set(server.batcher.waiting_adapters()) - {""})
        info = GaugeMetricFamily(
            "deepsynth_lora_requests_info",
            "Adapters decoding now and waiting in the queue, and the most resident at once (value: scrape time)",
            labels=["running_lora_adapters", "waiting_lora_adapters", "max_lora"],
        )
        running = ",".join(server.batcher.running_adapters)
        info.add_metric([running, ",".join(waiting), str(server.holder.max_loras)], time.time())
        yield info
        yield GaugeMetricFamily(
            "deepsynth_lora_resident", "Adapters attached to the base model", len(server.holder.slots())
        )
        yield CounterMetricFamily(
            "deepsynth_lora_evictions", "Adapters evicted (least recently used) to make room", server.holder.evictions
        )
        yield CounterMetricFamily(
            "deepsynth_requests_dropped", "Requests whose caller gave up before their batch", server.batcher.dropped
        )


class ServerMetrics:
    """The metrics of ``server``; :meth:`render` is the ``/metrics`` body."""

    def __init__(self, server: Any):
        self.registry = registry = CollectorRegistry()
        adapter = ["adapter"]
        self.requests = Counter("deepsynth_requests", "Generation requests answered", adapter, registry=registry)
        self.prompt_tokens = Counter(
            "deepsynth_prompt_tokens", "Prompt tokens (vision + instruction)", adapter, registry=registry
        )
        self.generation_tokens = Counter("deepsynth_generation_tokens", "Generated tokens", adapter, registry=registry)
        self.latency = Histogram(
            "deepsynth_request_latency_seconds",
            "Request to answer",
            adapter,
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_time = Histogram(
            "deepsynth_request_queue_seconds",
            "Request to its batch",
            adapter,
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "deepsynth_batch_size", "Requests per batch", buckets=_BATCH_BUCKETS, registry=registry
        )
        self.responses = Counter("deepsynth_http_responses", "HTTP responses by status", ["status"], registry=registry)
        self.errors = Counter("deepsynth_http_errors", "HTTP error responses by status", ["status"], registry=registry)
        self.on_demand_loads = Counter(
            "deepsynth_lora_loads_on_demand", "Registered adapters loaded for a request naming them", registry=registry
        )
        queue_length = Gauge("deepsynth_queue_length", "Requests waiting for a batch", registry=registry)
        queue_length.set_function(server.batcher.pending)
        registry.register(_AdapterCollector(server))

    def observe_batch(self, size: int) -> None:
        """A batch of ``size`` requests was decoded."""
        self.batch_size.observe(size)

    def observe_result(self, job: Any, result: Any) -> None:
        """A request was answered."""
        name = result.adapter["name"]
        self.requests.labels(name).inc()
        self.prompt_tokens.labels(name).inc(result.prompt_tokens)
        self.generation_tokens.labels(name).inc(len(result.token_ids))
        self.latency.labels(name).observe(time.perf_counter() - job.received)
        self.queue_time.labels(name).observe(result.queue_s)

    def observe_response(self, status: int) -> None:
        """An HTTP response went out with ``status``."""
        self.responses.labels(str(status)).inc()
        if status >= 400:
            self.errors.labels(str(status)).inc()

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
