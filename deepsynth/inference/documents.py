"""A plain text as the document the renderer takes, and its pages: how summarize and serve turn text into input."""

from __future__ import annotations

from typing import Any


def text_document(text: str, instruction: str | None = None) -> dict[str, Any]:
    """The renderer's document dict for ``text`` (no summary; ``instruction`` rides along)."""
    return {"id": "input", "split": "inference", "text": text, "summary": "", "instruction": instruction}


def render_text(renderer: Any, text: str, instruction: str | None = None) -> list[bytes]:
    """The PNG pages ``text`` renders to with ``renderer`` (a :class:`~deepsynth.rendering.DocumentRenderer`)."""
    return renderer.render(text_document(text, instruction))[0]["pages"]
