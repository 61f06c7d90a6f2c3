"""The header every HTML report starts with: which run, model version, data source and mode it describes."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any


def header_html(context: Mapping[str, Any]) -> str:
    """A two-column table of ``context`` (e.g. run, model version, data source, mode); empty values left out."""
    rows = "".join(
        f"<tr><th>{escape(str(key))}</th><td>{escape(str(value))}</td></tr>"
        for key, value in context.items()
        if value not in (None, "")
    )
    return f"<table class='report-header'>{rows}</table>" if rows else ""
