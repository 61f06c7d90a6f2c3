"""Who may change things, and which names a request may use.

When ``DEEPSYNTH_API_TOKEN`` is set, every request that changes something (POST, PUT, DELETE) must send it
as ``Authorization: Bearer TOKEN`` (or ``X-DeepSynth-Token``). The UI keeps the token in the tab's
``sessionStorage`` and sends it as a header; no cookie is ever set, so a page on another site cannot make
the browser send it (no CSRF). A request names configs, jobs and models by name only; names are checked
against :data:`NAME` and resolved inside the project's ``configs/`` or the DeepSynth home, never as paths.
"""

from __future__ import annotations

import hmac
import os
import re

from fastapi import HTTPException, Request

TOKEN_VARIABLE = "DEEPSYNTH_API_TOKEN"
#: A config, job or model name: letters, digits, ``-``, ``_`` and ``.`` (not first), at most 64 characters.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(value: str, what: str) -> str:
    """``value`` if it is a plain name (no ``/``, no ``..``); otherwise HTTP 400 naming ``what``."""
    if not NAME.fullmatch(value or "") or ".." in value:
        raise HTTPException(400, f"{what}: {value!r} is not a plain name (letters, digits, '-', '_', '.')")
    return value


def require_token(request: Request) -> None:
    """FastAPI dependency of every mutation: HTTP 401 unless the request carries ``DEEPSYNTH_API_TOKEN``."""
    expected = os.environ.get(TOKEN_VARIABLE)
    if not expected:
        return
    header = request.headers.get("authorization", "")
    given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    given = given or request.headers.get("x-deepsynth-token", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, f"this studio requires {TOKEN_VARIABLE}: send it as 'Authorization: Bearer TOKEN'")
