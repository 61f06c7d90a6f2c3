"""OpenAI-compatible endpoints: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions``.

The ``model`` field picks the adapter as in vLLM, SGLang and LoRAX: a served name, ``NAME@ALIAS``,
``NAME/VERSION`` (served or registered NAME), or a registered model in ``allow_model`` that is then
loaded on demand. A completion's ``prompt`` is the document text. A chat's last user message holds
the document: its text, or its ``image_url`` parts (``data:`` URLs of page images; nothing is
fetched), whose text parts are then the instruction; system (or developer) messages give the
instruction for a text. Decoding settings the request leaves out are the package's recorded ones.
``stream: true`` answers server-sent events in OpenAI's chunk format, ending with ``data: [DONE]``.
Errors use OpenAI's error object, so OpenAI's clients raise their usual exceptions.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from deepsynth.serving.batcher import JobResult
from deepsynth.serving.inputs import RequestError
from deepsynth.serving.requests import DecodingRequest

#: Paths whose errors take OpenAI's shape.
OPENAI_PREFIXES = ("/v1/models", "/v1/completions", "/v1/chat/completions")

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
}


def openai_error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


class _Sampling(BaseModel):
    """Fields both request kinds share."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(..., min_length=1, description="served adapter name, NAME@ALIAS, NAME/VERSION")
    max_tokens: int | None = Field(None, description="most generated tokens (default: the package's)")
    temperature: float | None = Field(None, ge=0, le=2, description="0 greedy, > 0 sampling (default: the package's)")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus sampling mass")
    seed: int | None = Field(None, description="sampling seed")
    stop: str | list[str] | None = Field(None, description="up to 4 stop strings")
    stream: bool = Field(False, description="server-sent events, one chunk per new piece of text")
    stream_options: dict[str, bool] | None = Field(None, description='{"include_usage": true}: a last usage chunk')
    n: int = Field(1, ge=1, le=1, description="answers per request (1)")
    user: str | None = Field(None, description="ignored")

    def stops(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > 4:
            raise RequestError(400, f"stop: at most 4 strings, got {len(stops)}")
        return stops


class CompletionRequest(_Sampling):
    """``POST /v1/completions``: the prompt is the document's text."""

    prompt: str | list[str] = Field(..., description="the document text (one)")


class ImageUrl(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    detail: str | None = None


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: ImageUrl | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class ChatRequest(_Sampling):
    """``POST /v1/chat/completions``: the last user message is the document (text or page images)."""

    messages: list[ChatMessage] = Field(..., min_length=1)
    max_completion_tokens: int | None = Field(None, description="the same as max_tokens")


def _texts(message: ChatMessage) -> list[str]:
    if isinstance(message.content, str):
        return [message.content]
    return [p.text or "" for p in message.content or [] if p.type == "text"]


def _page(url: str, index: int) -> str:
    """The base64 payload of a ``data:`` URL."""
    head, sep, payload = url.partition(",")
    if not (url.startswith("data:") and sep and head.endswith(";base64")):
        raise RequestError(400, f"image_url[{index}]: give the page as a data: URL (data:image/png;base64,...)")
    return payload


def chat_document(messages: list[ChatMessage]) -> tuple[str | None, list[str] | None, str | None]:
    """``(text, pages, instruction)`` of a chat request (see the module docstring)."""
    users = [m for m in messages if m.role == "user"]
    if not users:
        raise RequestError(400, "messages: give a user message holding the document")
    last = users[-1]
    system = "\n".join(t for m in messages if m.role in ("system", "developer") for t in _texts(m)).strip() or None
    parts = last.content if isinstance(last.content, list) else []
    images = [p.image_url.url for p in parts if p.type == "image_url" and p.image_url is not None]
    text = "\n".join(_texts(last)).strip()
    if images:
        return None, [_page(url, i) for i, url in enumerate(images)], text or system
    return text, None, system


def _usage(result: JobResult) -> dict[str, int]:
    completion = len(result.token_ids)
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": result.prompt_tokens + completion,
    }


def _finish(reason: str) -> str:
    return "length" if reason == "length" else "stop"


def add_openai_routes(app: FastAPI, server: Any) -> None:
    """Add the OpenAI-compatible routes for ``server`` (a :class:`~deepsynth.serving.server.ModelServer`)."""

    @app.get("/v1/models", summary="The base model and every served adapter (parent: the base)")
    def models() -> dict[str, Any]:
        base = server.base_model()
        data = [{"id": base, "object": "model", "created": int(server.started), "owned_by": "deepsynth"}]
        data[0].update(root=base, parent=None)
        for slot in server.holder.slots():
            info = slot.info()
            data.append(
                {
                    "id": slot.name,
                    "object": "model",
                    "created": int(slot.loaded_at),
                    "owned_by": "deepsynth",
                    "root": slot.ref,
                    "parent": base,
                    **{k: info[k] for k in ("registry_name", "version", "alias", "sha256", "pinned")},
                }
            )
        return {"object": "list", "data": data}

    def decoding(body: _Sampling, **document: Any) -> DecodingRequest:
        if body.model == server.base_model() and server.holder.table.get(body.model) is None:
            raise RequestError(404, f"model {body.model!r}: the base model is not served on its own; name an adapter")
        limit = body.max_tokens if body.max_tokens is not None else getattr(body, "max_completion_tokens", None)
        return DecodingRequest(
            adapter=body.model,
            max_new_tokens=limit,
            temperature=body.temperature,
            top_p=body.top_p,
            seed=body.seed,
            stop=body.stops(),
            **document,
        )

    def respond(body: _Sampling, request: DecodingRequest, chat: bool) -> Any:
        kind = "chat.completion" if chat else "text_completion"
        ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        if body.stream:
            _job, events = server.stream(request)
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(
                _sse(events, ident, created, body.model, chat, include_usage), media_type="text/event-stream"
            )
        result = server.wait(server.submit(request))
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": result.text}}
        else:
            choice = {"index": 0, "text": result.text}
        choice.update(finish_reason=_finish(result.finish_reason), logprobs=None)
        return {
            "id": ident,
            "object": kind,
            "created": created,
            "model": body.model,
            "choices": [choice],
            "usage": _usage(result),
            "system_fingerprint": result.adapter["sha256"][:16],
            "adapter": result.adapter,
        }

    @app.post("/v1/completions", summary="OpenAI completions: the prompt is the document text")
    def completions(body: CompletionRequest) -> Any:
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if len(prompts) != 1:
            raise RequestError(400, f"prompt: give one document per request, got {len(prompts)}")
        return respond(body, decoding(body, text=prompts[0]), chat=False)

    @app.post("/v1/chat/completions", summary="OpenAI chat: the last user message is the document (text or pages)")
    def chat_completions(body: ChatRequest) -> Any:
        text, pages, instruction = chat_document(body.messages)
        return respond(body, decoding(body, text=text, pages=pages, instruction=instruction), chat=True)


def _sse(events: Iterator[Any], ident: str, created: int, model: str, chat: bool, include_usage: bool) -> Iterator[str]:
    """Server-sent events in OpenAI's chunk format; the last line is ``data: [DONE]``."""
    kind = "chat.completion.chunk" if chat else "text_completion"

    def chunk(text: str | None, finish: str | None, first: bool = False) -> str:
        if chat:
            delta: dict[str, Any] = {"role": "assistant"} if first else {}
            if text:
                delta["content"] = text
            choice: dict[str, Any] = {"index": 0, "delta": delta}
        else:
            choice = {"index": 0, "text": text or ""}
        choice.update(finish_reason=finish, logprobs=None)
        body = {"id": ident, "object": kind, "created": created, "model": model, "choices": [choice]}
        return f"data: {json.dumps(body)}\n\n"

    if chat:
        yield chunk(None, None, first=True)
    try:
        for item in events:
            if isinstance(item, JobResult):
                yield chunk(None, _finish(item.finish_reason))
                if include_usage:
                    usage = {"id": ident, "object": kind, "created": created, "model": model, "choices": []}
                    yield f"data: {json.dumps({**usage, 'usage': _usage(item)})}\n\n"
            else:
                yield chunk(item, None)
    except RequestError as exc:
        yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'server_error', 'code': exc.status}})}\n\n"
    yield "data: [DONE]\n\n"
