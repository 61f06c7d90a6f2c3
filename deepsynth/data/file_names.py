"""A safe, distinct file name for any string that names something (a document id, a job id).

A string made only of ASCII letters, digits, ``-``, ``_`` and ``.`` (not starting with ``.`` or ``-``) and at
most :data:`MAX_STEM` characters long is its own name. Any other (``a/b``, ``..``, ``1 2``, a 100,000-character
id) gets a sanitized, shortened stem plus 10 hex digits of the sha256 of the exact string, so two strings that
sanitize alike (``a/b`` and ``a\\b``) still get different names, and no name leaves its folder.
"""

from __future__ import annotations

import hashlib
import re

#: Characters of a string kept in its file name; the rest of a longer string is represented by its hash.
MAX_STEM = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def file_stem(name: str) -> str:
    """``name`` itself when it is a safe file name, else a sanitized, shortened stem + ``-`` + 10 hex of its sha256."""
    stem = _UNSAFE.sub("_", name[:MAX_STEM])
    stem = re.sub(r"^[.-]", "_", stem) or "doc"
    if stem == name:
        return stem
    return f"{stem}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"
