"""One generation request as the engine takes it, whichever endpoint it came through; what runtime loads may take."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from deepsynth.serving.inputs import RequestError


@dataclass
class DecodingRequest:
    """What to summarize, with which adapter, and the decoding settings the caller set (``None``: the package's).

    Attributes:
        text: Plain document text (rendered like the adapter's training data), or
        pages: page images as base64 strings.
        adapter: Served name, alias, ``NAME@ALIAS``, ``NAME/VERSION``, sha256 prefix (``None``: the first).
        instruction: Instruction (``None``: the one the adapter was trained with).
        max_new_tokens: Most generated tokens.
        no_repeat_ngram_size: Forbid repeating n-grams of this size.
        temperature: 0 greedy, > 0 sampling at this temperature.
        top_p: Nucleus sampling mass (with sampling).
        seed: Sampling seed (the request then decodes alone, so the seed decides the answer).
        stop: The answer ends before the first of these strings.
    """

    text: str | None = None
    pages: list[str] | None = None
    adapter: str | None = None
    instruction: str | None = None
    max_new_tokens: int | None = None
    no_repeat_ngram_size: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


def runtime_ref(lora_path: str, adapter_root: str | os.PathLike | None) -> str:
    """What ``POST /v1/load_lora_adapter`` may load: a registry reference, or a package under ``adapter_root``.

    A path may not contain ``..`` and must still lie under ``adapter_root`` with every symlink
    followed; a relative path is taken relative to ``adapter_root``.

    Returns:
        The registry reference, or the package's resolved path.

    Raises:
        RequestError: 403 a path without ``adapter_root`` or outside it; 400 a path with ``..``.
    """
    if lora_path.startswith("models:/"):
        return lora_path
    if not adapter_root:
        raise RequestError(
            403,
            "lora_path: only registry references (models:/NAME@ALIAS, models:/NAME/VERSION) are loaded at run "
            "time; set serve.adapter_root (--adapter-root) to allow packages under one folder",
        )
    if ".." in PurePath(lora_path).parts:
        raise RequestError(400, f"lora_path: {lora_path!r} contains '..'")
    root = Path(adapter_root).resolve()
    target = (root / lora_path).resolve()
    if not target.is_relative_to(root):
        raise RequestError(403, f"lora_path: {lora_path!r} is outside adapter_root {root} (symlinks followed)")
    return str(target)
