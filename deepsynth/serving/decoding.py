"""Watching each row of a batch while it decodes: its own token limit, deadline, stop strings and streamed text.

:func:`deepsynth.inference.generation.decode` calls a :class:`StepWatch` after every step; it says per
row whether that row is done, so a row stops at its own ``max_new_tokens``, at a stop string, or as
soon as its caller gave up (past its deadline, or a streaming client went away) while the other rows
go on. Streaming rows get their new text after each step: only text that can no longer change (no
half character, no beginning of a stop string, no trailing space) is sent, so the pieces add up to
exactly the final answer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first stop string in it, and whether one was found."""
    found = [text.find(s) for s in stops if s and s in text]
    return (text[: min(found)], True) if found else (text, False)


def settled(text: str, stops: Sequence[str]) -> str:
    """The part of a growing ``text`` that later tokens cannot change: no trailing partial stop string,
    replacement character (half of a multi-byte character) or whitespace."""
    longest = max((len(s) for s in stops), default=0)
    for k in range(min(len(text), longest - 1), 0, -1):
        if any(s.startswith(text[-k:]) for s in stops):
            text = text[:-k]
            break
    return text.rstrip("\ufffd").rstrip()


def final_text(tokenizer: Any, ids: list[int], stops: Sequence[str]) -> tuple[str, bool]:
    """The answer ``ids`` decode to, cut at the first stop string; and whether a stop string ended it."""
    text, hit = cut_at_stop(tokenizer.decode(ids, skip_special_tokens=True), stops)
    return text.strip(), hit


def kept_ids(row: list[int], eos: int, pad: int) -> list[int]:
    """A row's generated ids up to EOS, padding removed."""
    if eos in row:
        row = row[: row.index(eos)]
    return [t for t in row if t != pad]


@dataclass
class RowState:
    """What the watcher knows of one row: the job, its limit, the text streamed so far and why it ended."""

    job: Any
    limit: int
    emitted: str = ""
    done: bool = False
    reason: str | None = None  # "eos", "length", "stop" or "abandoned"

    def emit(self, visible: str) -> None:
        """Send the text after what was sent already (only while it extends it)."""
        if self.job.on_text is not None and visible.startswith(self.emitted) and len(visible) > len(self.emitted):
            self.job.on_text(visible[len(self.emitted) :])
            self.emitted = visible


class StepWatch:
    """The ``on_step`` callback of one batch (see the module docstring).

    Args:
        jobs: The batch's jobs, one per row, each with ``max_new_tokens`` (via ``generation``), ``stop``,
            ``deadline`` (``time.perf_counter`` seconds), ``abandoned`` and ``on_text``.
        tokenizer: Decodes streamed text and finds stop strings.
    """

    def __init__(self, jobs: Sequence[Any], tokenizer: Any):
        self.rows = [RowState(job, job.generation.max_new_tokens) for job in jobs]
        self.tokenizer = tokenizer
        self.steps = 0
        self._tokens: list[list[int]] = [[] for _ in jobs]  # per row, ids kept so far (one new column per step)

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        self.steps += 1
        now = time.perf_counter()
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        for row, tokens, token in zip(self.rows, self._tokens, ids[:, -1].tolist()):
            if row.done:
                continue
            job = row.job
            if job.abandoned or now > job.deadline:
                row.done, row.reason = True, "abandoned"
                continue
            if token == eos:
                row.done, row.reason = True, "eos"
            elif token != pad:
                tokens.append(token)
            if not row.done and len(tokens) >= row.limit:
                row.done, row.reason = True, "length"
            if job.stop or job.on_text is not None:
                text, hit = cut_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), job.stop)
                if hit:
                    row.done, row.reason = True, "stop"
                row.emit(text.strip() if row.done else settled(text.lstrip(), job.stop))
        return torch.tensor([row.done for row in self.rows], dtype=torch.bool)
