"""Request inputs checked before they reach the model: sizes (413) and decodable pages (400)."""

from __future__ import annotations

import base64
import binascii
import io
import warnings

from PIL import Image

from deepsynth.serving.config import ServeConfig


class RequestError(Exception):
    """A request the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def check_text(text: str, config: ServeConfig) -> None:
    """Refuse an empty text (400) or one over ``max_text_chars`` (413)."""
    if not text.strip():
        raise RequestError(400, "text: is empty")
    if len(text) > config.max_text_chars:
        raise RequestError(413, f"text: {len(text)} characters, the limit is {config.max_text_chars}")


def decode_pages(encoded: list[str], config: ServeConfig) -> list[bytes]:
    """Base64 page images → RGB PNG bytes, after checking count, encoding, format and pixel count.

    Args:
        encoded: One base64 string per page (PNG, or any format Pillow reads).
        config: The limits.

    Returns:
        PNG bytes per page.

    Raises:
        RequestError: 400 for no pages, bad base64 or an undecodable image; 413 for too many pages or pixels.
    """
    if not encoded:
        raise RequestError(400, "pages: give at least one page image")
    if len(encoded) > config.max_pages:
        raise RequestError(413, f"pages: {len(encoded)} pages, the limit is {config.max_pages}")
    pages = []
    for i, text in enumerate(encoded):
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, f"pages[{i}]: not valid base64") from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(raw))  # reads the header only
                if image.width * image.height > config.max_page_pixels:
                    raise RequestError(
                        413, f"pages[{i}]: {image.width}x{image.height} pixels, the limit is {config.max_page_pixels}"
                    )
                image.load()
        except RequestError:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise RequestError(413, f"pages[{i}]: image too large to decode") from None
        except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for broken files
            raise RequestError(400, f"pages[{i}]: not a decodable image ({type(exc).__name__}: {exc})") from None
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG", compress_level=1)
        pages.append(buffer.getvalue())
    return pages
