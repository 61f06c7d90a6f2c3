"""Server settings (``configs/serving/serve.yaml``; the ``deepsynth serve`` options override them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deepsynth.configuration import Section, from_dict, knob
from deepsynth.errors import ConfigError

#: Environment variable holding the bearer token every /v1 endpoint then requires.
TOKEN_ENV = "DEEPSYNTH_API_TOKEN"


@dataclass
class ServeConfig(Section):
    """How ``deepsynth serve`` listens, batches and protects itself."""

    _section = "serve"

    host: str = knob("127.0.0.1", "interface to bind (0.0.0.0 exposes the server to the network)")
    port: int = knob(8080, "TCP port (0: any free port)")
    device: str = knob("cpu", "cpu or cuda")
    max_batch_size: int = knob(8, "requests decoded together in one batch (adapters may differ)")
    max_wait_ms: float = knob(10.0, "how long a forming batch waits for its next request (each arrival restarts it)")
    max_gather_ms: float = knob(100.0, "longest a batch keeps gathering while requests keep arriving")
    max_queue: int = knob(64, "requests waiting for a batch before new ones get 429")
    request_timeout_s: float = knob(120.0, "a request still unanswered after this gets 504")
    max_text_chars: int = knob(100_000, "longest text accepted (413 beyond)")
    max_pages: int = knob(16, "most page images per request (413 beyond)")
    max_page_pixels: int = knob(4096 * 4096, "most pixels per page image (413 beyond)")
    max_body_bytes: int = knob(64 * 1024 * 1024, "largest request body (413 beyond)")
    # Hostile-client limits (deepsynth.serving.inputs / guard / http).
    max_instruction_chars: int = knob(2000, "longest instruction in characters (413 beyond)")
    max_instruction_tokens: int = knob(512, "longest instruction in tokens (413 beyond)")
    max_request_pixels: int = knob(16 * 1024 * 1024, "most pixels of all a request's page images together (413)")
    max_connections: int = knob(256, "open connections at most (more are refused; kept below the fd limit)")
    max_bodies_bytes: int = knob(256 * 1024 * 1024, "request bodies held at once, all connections together (503)")
    header_timeout_s: float = knob(10.0, "a connection must send a request's headers within this (else closed)")
    body_timeout_s: float = knob(60.0, "a request's body must arrive within this after its headers (else 408)")
    send_timeout_s: float = knob(30.0, "a client not reading the response for this long is disconnected")
    keep_alive_timeout_s: float = knob(5.0, "an idle keep-alive connection is closed after this")
    allowed_hosts: list[str] = knob([], "Host names accepted besides IP literals and localhost (without a token)")
    max_new_tokens: int = knob(512, "upper bound of a request's max_new_tokens")
    default_max_new_tokens: int = knob(
        128, "max_new_tokens of a request that gives none, when its package records none"
    )
    # Adapter residency, runtime updates and docs (deepsynth.serving.holder / app).
    max_loras: int = knob(8, "adapters resident at once; a new one evicts the least recently used unpinned one")
    allow_model: list[str] = knob([], "registered model names a request may load on demand (model: NAME@ALIAS)")
    allow_runtime_lora_updates: bool = knob(False, "enable POST /v1/load_lora_adapter and /v1/unload_lora_adapter")
    adapter_root: str | None = knob(None, "folder whose packages load_lora_adapter may load (no .., no symlinks out)")
    docs: bool = knob(True, "serve /docs (Swagger UI from bundled files, no CDN) and /openapi.json")
    poll_interval_s: float = knob(30.0, "seconds between checks of the registry aliases served (0: no polling)")
    retry_after_s: int = knob(1, "Retry-After seconds sent with 429 and 503")

    def __post_init__(self) -> None:
        positive = (
            "max_batch_size",
            "max_queue",
            "request_timeout_s",
            "max_text_chars",
            "max_pages",
            "max_page_pixels",
            "max_body_bytes",
            "max_new_tokens",
            "default_max_new_tokens",
            "retry_after_s",
            "max_loras",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"serve.{name}: must be > 0")
        for name in ("max_instruction_chars", "max_instruction_tokens", "max_request_pixels", "max_connections"):
            if getattr(self, name) <= 0:
                raise ValueError(f"serve.{name}: must be > 0")
        if self.max_bodies_bytes < self.max_body_bytes:
            raise ValueError("serve.max_bodies_bytes: must be >= max_body_bytes")
        for name in ("header_timeout_s", "body_timeout_s", "send_timeout_s", "keep_alive_timeout_s"):
            if not getattr(self, name) > 0:  # NaN too
                raise ValueError(f"serve.{name}: must be > 0")
        if min(self.max_wait_ms, self.max_gather_ms, self.poll_interval_s) < 0 or not 0 <= self.port < 65536:
            raise ValueError("serve: max_wait_ms, max_gather_ms and poll_interval_s must be >= 0, port within 0-65535")
        if self.default_max_new_tokens > self.max_new_tokens:
            raise ValueError("serve.default_max_new_tokens: must be <= max_new_tokens")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> ServeConfig:
        """Build from a mapping (unknown keys are errors)."""
        return from_dict(cls, data, source=source)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> ServeConfig:
        """Build from a YAML file whose ``serve`` section holds the knobs (errors name the file and line)."""
        from deepsynth.yaml_bounds import read_yaml

        data = read_yaml(path)
        if set(data) - {"serve"}:
            raise ConfigError(f"{path}: expected one top-level section, serve")
        return cls.from_dict(data.get("serve") or {}, source=str(path))


def api_token() -> str | None:
    """The bearer token from ``DEEPSYNTH_API_TOKEN`` (``None`` when unset or empty)."""
    return os.environ.get(TOKEN_ENV) or None
