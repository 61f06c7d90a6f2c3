"""Request inputs checked before they reach the model: text that encodes (422), sizes and cost (413),
decodable pages (400).

Every check here runs before a request is queued, so a bad request is refused alone and never fails
the batch it would have joined: :func:`check_request` is the one call for a request's text fields.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image

from deepsynth.configuration import lone_surrogate
from deepsynth.serving.config import ServeConfig


class RequestError(Exception):
    """A request the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def check_unicode(fields: Mapping[str, Any]) -> None:
    """Refuse (422) any string, however deeply nested in ``fields``, that is not valid Unicode.

    JSON may carry lone surrogates (``"\\ud800"``), which Python keeps in a ``str`` but no tokenizer,
    renderer or UTF-8 encoder accepts. The message names the field (``messages[0].content``) and the
    character's position.
    """
    stack: list[tuple[str, Any]] = list(fields.items())
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            problem = lone_surrogate(value)
            if problem is not None:
                raise RequestError(422, f"{where}: not valid Unicode ({problem}); send UTF-8 text")
        elif isinstance(value, Mapping):
            stack.extend((f"{where}.{key}", item) for key, item in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))


def check_text(text: str, config: ServeConfig) -> None:
    """Refuse an empty text (400), one over ``max_text_chars`` (413) or one that is not valid Unicode (422)."""
    if not text.strip():
        raise RequestError(400, "text: is empty")
    if len(text) > config.max_text_chars:
        raise RequestError(413, f"text: {len(text)} characters, the limit is max_text_chars={config.max_text_chars}")
    check_unicode({"text": text})


def check_instruction(instruction: str | None, config: ServeConfig, tokenizer: Any = None) -> None:
    """Refuse an instruction over ``max_instruction_chars`` or, given the tokenizer, ``max_instruction_tokens`` (413).

    Attention grows with the square of the prompt, so the instruction is bounded like the text. The
    character bound is checked first: it also bounds the tokenizer's work.
    """
    if instruction is None:
        return
    if len(instruction) > config.max_instruction_chars:
        raise RequestError(
            413,
            f"instruction: {len(instruction)} characters, "
            f"the limit is max_instruction_chars={config.max_instruction_chars}",
        )
    check_unicode({"instruction": instruction})
    if tokenizer is not None:
        tokens = len(tokenizer(instruction, add_special_tokens=False)["input_ids"])
        if tokens > config.max_instruction_tokens:
            raise RequestError(
                413,
                f"instruction: {tokens} tokens, the limit is max_instruction_tokens={config.max_instruction_tokens}",
            )


def check_request(
    config: ServeConfig,
    tokenizer: Any = None,
    *,
    text: str | None = None,
    instruction: str | None = None,
    **other: Any,
) -> None:
    """Every check of a request's text fields, before it is queued: call it for each request.

    Args:
        config: The limits.
        tokenizer: The served model's tokenizer (counts the instruction's tokens; ``None`` skips that count).
        text: The document text, if the request has one (empty/size/Unicode checks).
        instruction: The instruction, if any (size in characters and tokens, Unicode).
        **other: Any other string fields, nested lists/dicts included (Unicode only), by field name.

    Raises:
        RequestError: 400, 413 or 422 naming the field and the limit.
    """
    if text is not None:
        check_text(text, config)
    check_instruction(instruction, config, tokenizer)
    check_unicode(other)


def decode_pages(encoded: list[str], config: ServeConfig) -> list[bytes]:
    """Base64 page images → RGB PNG bytes, after checking count, encoding, format and pixel count.

    Args:
        encoded: One base64 string per page (PNG, or any format Pillow reads).
        config: The limits.

    Returns:
        PNG bytes per page.

    Raises:
        RequestError: 400 for no pages, bad base64 or an undecodable image; 413 for too many pages, or too
            many pixels in a page or in all pages together (``max_request_pixels``: the request's cost bound).
    """
    if not encoded:
        raise RequestError(400, "pages: give at least one page image")
    if len(encoded) > config.max_pages:
        raise RequestError(413, f"pages: {len(encoded)} pages, the limit is max_pages={config.max_pages}")
    raws, total_pixels = [], 0
    for i, text in enumerate(encoded):  # every page's size from its header before any page is decoded
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, f"pages[{i}]: not valid base64") from None
        width, height = _opened(i, raw, lambda image: image.size)
        if width * height > config.max_page_pixels:
            raise RequestError(
                413, f"pages[{i}]: {width}x{height} pixels, the limit is max_page_pixels={config.max_page_pixels}"
            )
        total_pixels += width * height
        if total_pixels > config.max_request_pixels:
            raise RequestError(
                413,
                f"pages: {total_pixels} pixels up to pages[{i}], the limit for a request's pages together "
                f"is max_request_pixels={config.max_request_pixels}",
            )
        raws.append(raw)
    return [_opened(i, raw, _as_png) for i, raw in enumerate(raws)]


def _as_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _opened(index: int, raw: bytes, use: Callable[[Image.Image], Any]) -> Any:
    """``use(image)`` of page ``index``'s image; Pillow's failures become 400, decompression bombs 413."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as image:  # reads the header only; ``use`` may decode
                return use(image)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise RequestError(413, f"pages[{index}]: image too large to decode") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for broken files
        raise RequestError(400, f"pages[{index}]: not a decodable image ({type(exc).__name__}: {exc})") from None
