"""Greedy generation for a batch whose documents may each use a different adapter (peft ``adapter_names``).

Prompts are built by the same code as :func:`deepsynth.inference.generation.generate_with_stats`
(the trainer's preprocessing), left-padded into one batch, and decoded once for the longest
``max_new_tokens`` asked; each document's ids are then cut to its own limit, which for greedy
decoding is exactly what a run with that limit gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from deepsynth.inference.generation import as_document, left_padded, prompt_embeddings
from deepsynth.inference.loading import LoadedModel


@dataclass
class MixedItem:
    """One document of a mixed batch.

    Attributes:
        loaded: The adapter's view of the shared model (its trainer config sets instruction and lengths).
        adapter_name: The peft adapter to decode it with.
        pages: Page images (PNG bytes) rendered in ``mode``.
        mode: Rendering mode of the pages.
        instruction: Instruction (``None``: the adapter's training instruction).
        max_new_tokens: Longest summary for this document.
    """

    loaded: LoadedModel
    adapter_name: str
    pages: list[bytes]
    mode: str
    instruction: str | None
    max_new_tokens: int


@dataclass
class MixedOutput:
    """A summary and its token ids."""

    text: str
    token_ids: list[int]


@torch.no_grad()
def generate_mixed(model: Any, tokenizer: Any, items: list[MixedItem], no_repeat_ngram_size: int = 0) -> list[MixedOutput]:
    """Decode ``items`` together, each with its own adapter.

    Args:
        model: The ``PeftModel`` holding every adapter named by the items.
        tokenizer: Its tokenizer.
        items: The documents.
        no_repeat_ngram_size: Forbid repeating n-grams of this size (0: off), for the whole batch.

    Returns:
        One output per item, in order.
    """
    device = next(model.parameters()).device
    rows = [prompt_embeddings(item.loaded, as_document(item.pages, item.mode, item.instruction, i), device)
            for i, item in enumerate(items)]
    embeds, mask = left_padded(rows)
    kwargs: dict[str, Any] = {"no_repeat_ngram_size": no_repeat_ngram_size} if no_repeat_ngram_size else {}
    generated = model.generate(
        inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max(i.max_new_tokens for i in items),
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False,
        adapter_names=[i.adapter_name for i in items], **kwargs,
    )
    outputs = []
    for item, ids in zip(items, generated.tolist()):
        ids = ids[: item.max_new_tokens]
        if tokenizer.eos_token_id in ids:
            ids = ids[: ids.index(tokenizer.eos_token_id)]
        ids = [t for t in ids if t != tokenizer.pad_token_id]
        outputs.append(MixedOutput(tokenizer.decode(ids, skip_special_tokens=True).strip(), ids))
    return outputs

