"""The HTTP API (FastAPI): summarize, the OpenAI-compatible endpoints, list/load/unload adapters (vLLM's
names), health, readiness, Prometheus metrics, OpenAPI docs (Swagger UI from bundled files, or off).

Every error is a JSON ``{"error": message}`` with a 4xx/5xx status (the OpenAI endpoints use OpenAI's
error object); 429 and 503 carry ``Retry-After``. With ``DEEPSYNTH_API_TOKEN`` set, every ``/v1``
endpoint wants ``Authorization: Bearer <token>``. Runtime adapter updates are off unless
``allow_runtime_lora_updates``, and then take registry references or packages under ``adapter_root``.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from deepsynth.errors import DeepSynthError
from deepsynth.serving.config import api_token
from deepsynth.serving.inputs import RequestError
from deepsynth.serving.metrics import CONTENT_TYPE
from deepsynth.serving.openai_api import OPENAI_PREFIXES, add_openai_routes, openai_error
from deepsynth.serving.requests import runtime_ref
from deepsynth.serving.server import ModelServer
from deepsynth.serving.slots import AmbiguousAdapterError, UnknownAdapterError

logger = logging.getLogger(__name__)


class SummarizeRequest(BaseModel):
    """One document (text, or page images as base64 PNG) and how to summarize it."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, description="plain document text, rendered like the adapter's training data")
    pages: list[str] | None = Field(None, description="page images, base64 (PNG or any format Pillow reads)")
    adapter: str | None = Field(
        None,
        description="served name, registry alias or version, NAME@ALIAS, NAME/VERSION or sha256 "
        "prefix (default: the first adapter loaded)",
    )
    model: str | None = Field(None, description="the same as adapter (OpenAI's name for it)")
    instruction: str | None = Field(None, description="instruction (default: the one the adapter was trained with)")
    max_new_tokens: int | None = Field(None, description="longest summary in tokens (default: the package's)")
    no_repeat_ngram_size: int | None = Field(
        None, ge=0, le=16, description="forbid repeating n-grams of this size (0: off; default: the package's)"
    )
    temperature: float | None = Field(None, ge=0, le=2, description="0: greedy; > 0: sample (default: the package's)")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus sampling mass (with temperature > 0)")
    seed: int | None = Field(None, description="sampling seed: the same request gives the same answer")
    stop: list[str] | None = Field(None, max_length=4, description="the summary ends before the first of these")


class LoadAdapterRequest(BaseModel):
    """vLLM's ``/v1/load_lora_adapter`` body: a served name and a registry URI or package path."""

    model_config = ConfigDict(extra="forbid")
    lora_name: str = Field(..., min_length=1, description="name requests use to pick the adapter")
    lora_path: str = Field(
        ..., min_length=1, description="models:/NAME@ALIAS, models:/NAME/VERSION, or a package under adapter_root"
    )
    pinned: bool = Field(False, description="never evict it to make room for another adapter")


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
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if config.docs else None,
    )
    if config.docs:
        from deepsynth.api_docs import mount_offline_docs

        mount_offline_docs(app)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        response = await _guarded(request, call_next)
        server.metrics.observe_response(response.status_code)
        return response

    async def _guarded(request: Request, call_next: Any) -> Any:
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

    def answer(request: Request, status: int, message: str) -> JSONResponse:
        retry = config.retry_after_s if status in (429, 503) else None
        if request.url.path.startswith(OPENAI_PREFIXES):
            return openai_error(status, message, retry)
        return _error(status, message, retry)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        return answer(request, exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return answer(request, 422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (unknown route, wrong method, a body it cannot parse, e.g. JSON nested
        # deeper than the parser's recursion limit) in this API's shape, not {"detail": ...}.
        return answer(request, exc.status_code, str(exc.detail))

    @app.exception_handler(UnknownAdapterError)
    async def unknown(request: Request, exc: UnknownAdapterError) -> JSONResponse:
        return answer(request, 404, str(exc))

    @app.exception_handler(AmbiguousAdapterError)
    async def ambiguous(request: Request, exc: AmbiguousAdapterError) -> JSONResponse:
        return answer(request, 409, str(exc))

    @app.exception_handler(DeepSynthError)
    async def refused(request: Request, exc: DeepSynthError) -> JSONResponse:
        return answer(request, 400, str(exc))

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        server.metrics.observe_response(500)
        return answer(request, 500, f"internal error ({type(exc).__name__}); the server log has the details")

    @app.post("/v1/summarize", summary="Summarize a text or page images with a served adapter")
    def summarize(body: SummarizeRequest) -> dict[str, Any]:
        fields = body.model_dump()
        model = fields.pop("model")
        if model and fields["adapter"] and model != fields["adapter"]:
            raise RequestError(400, "give adapter or model, not two different ones")
        fields["adapter"] = fields["adapter"] or model
        fields["stop"] = fields["stop"] or []
        return server.summarize(**fields)

    @app.get("/v1/adapters", summary="The adapters served, with registry name, version and sha256")
    def adapters() -> dict[str, Any]:
        return {"adapters": [s.info() for s in server.holder.slots()], "max_loras": config.max_loras}

    def runtime_updates_allowed() -> None:
        if not config.allow_runtime_lora_updates:
            raise RequestError(
                403,
                "runtime adapter updates are off: start the server with --allow-runtime-lora-updates "
                "(serve.allow_runtime_lora_updates) to load or unload adapters over HTTP",
            )

    @app.post("/v1/load_lora_adapter", summary="Load (or hot-swap) an adapter (needs allow_runtime_lora_updates)")
    def load_adapter(body: LoadAdapterRequest) -> dict[str, Any]:
        runtime_updates_allowed()
        return server.load_adapter(body.lora_name, runtime_ref(body.lora_path, config.adapter_root), body.pinned)

    @app.post("/v1/unload_lora_adapter", summary="Stop serving an adapter (needs allow_runtime_lora_updates)")
    def unload_adapter(body: UnloadAdapterRequest) -> dict[str, Any]:
        runtime_updates_allowed()
        return {"status": "unloaded", "adapter": server.holder.unload(body.lora_name).info()}

    add_openai_routes(app, server)

    @app.get("/metrics", summary="Prometheus metrics (text format)")
    def metrics() -> Response:
        return Response(server.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/healthz", summary="The process answers")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", summary="An adapter is loaded and the batch worker runs")
    def readyz() -> JSONResponse:
        if not server.ready():
            return _error(503, "not ready: no adapter loaded or the batch worker stopped", config.retry_after_s)
        return JSONResponse({"status": "ready", "adapters": len(server.holder.slots())})

    return app
