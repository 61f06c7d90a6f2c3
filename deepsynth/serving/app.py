"""The HTTP API (FastAPI): summarize, list/load/unload adapters (vLLM's names), health, readiness, OpenAPI docs.

Every error is a JSON ``{"error": message}`` with a 4xx/5xx status; 429 and 503 carry ``Retry-After``.
With ``DEEPSYNTH_API_TOKEN`` set, every ``/v1`` endpoint wants ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from deepsynth.errors import DeepSynthError
from deepsynth.serving.config import api_token
from deepsynth.serving.inputs import RequestError
from deepsynth.serving.server import ModelServer
from deepsynth.serving.slots import UnknownAdapterError


class SummarizeRequest(BaseModel):
    """One document (text, or page images as base64 PNG) and how to summarize it."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, description="plain document text, rendered like the adapter's training data")
    pages: list[str] | None = Field(None, description="page images, base64 (PNG or any format Pillow reads)")
    adapter: str | None = Field(
        None,
        description="served name, registry alias or version, NAME/VERSION or sha256 "
        "prefix (default: the first adapter loaded)",
    )
    instruction: str | None = Field(None, description="instruction (default: the one the adapter was trained with)")
    max_new_tokens: int | None = Field(None, description="longest summary in tokens (greedy decoding)")
    no_repeat_ngram_size: int = Field(0, ge=0, le=16, description="forbid repeating n-grams of this size (0: off)")


class LoadAdapterRequest(BaseModel):
    """vLLM's ``/v1/load_lora_adapter`` body: a served name and a registry URI or package path."""

    model_config = ConfigDict(extra="forbid")
    lora_name: str = Field(..., min_length=1, description="name requests use to pick the adapter")
    lora_path: str = Field(..., min_length=1, description="models:/NAME@ALIAS, models:/NAME/VERSION, or a package")


class UnloadAdapterRequest(BaseModel):
    """vLLM's ``/v1/unload_lora_adapter`` body."""

    model_config = ConfigDict(extra="forbid")
    lora_name: str = Field(..., min_length=1)


def _error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "")
            parts.append(f"request body: invalid JSON at character {loc[-1] if loc else '?'} ({detail})")
        else:
            parts.append(f"{'.'.join(loc) or 'request body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def create_app(server: ModelServer) -> FastAPI:
    """The FastAPI application serving ``server``."""
    config = server.config
    token = api_token()
    app = FastAPI(
        title="DeepSynth summarizer",
        version="1",
        description="DeepSeek-OCR + LoRA adapters from the DeepSynth registry, several on one base model.",
    )

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if token and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return JSONResponse(
                    {"error": "missing or wrong bearer token (Authorization: Bearer ...)"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return _error(400, "Content-Length: not a number")
            if int(length) > config.max_body_bytes:
                if int(length) <= 16 * config.max_body_bytes:
                    # Read and drop the body: a client still sending it would see the connection reset instead.
                    async for _chunk in request.stream():
                        pass
                return _error(413, f"request body: {length} bytes, the limit is {config.max_body_bytes}")
        return await call_next(request)

    @app.exception_handler(RequestError)
    async def request_error(_request: Request, exc: RequestError) -> JSONResponse:
        return _error(exc.status, str(exc), config.retry_after_s if exc.status in (429, 503) else None)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.exception_handler(UnknownAdapterError)
    async def unknown(_request: Request, exc: UnknownAdapterError) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(DeepSynthError)
    async def refused(_request: Request, exc: DeepSynthError) -> JSONResponse:
        return _error(400, str(exc))

    @app.post("/v1/summarize", summary="Summarize a text or page images with a served adapter")
    def summarize(body: SummarizeRequest) -> dict[str, Any]:
        return server.summarize(**body.model_dump())

    @app.get("/v1/adapters", summary="The adapters served, with registry name, version and sha256")
    def adapters() -> dict[str, Any]:
        return {"adapters": [s.info() for s in server.holder.slots()]}

    @app.post("/v1/load_lora_adapter", summary="Load (or hot-swap) an adapter from the registry or a package")
    def load_adapter(body: LoadAdapterRequest) -> dict[str, Any]:
        return server.load_adapter(body.lora_name, body.lora_path)

    @app.post("/v1/unload_lora_adapter", summary="Stop serving an adapter")
    def unload_adapter(body: UnloadAdapterRequest) -> dict[str, Any]:
        return {"status": "unloaded", "adapter": server.holder.unload(body.lora_name).info()}

    @app.get("/healthz", summary="The process answers")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", summary="An adapter is loaded and the batch worker runs")
    def readyz() -> JSONResponse:
        if not server.ready():
            return _error(503, "not ready: no adapter loaded or the batch worker stopped", config.retry_after_s)
        return JSONResponse({"status": "ready", "adapters": len(server.holder.slots())})

    return app
