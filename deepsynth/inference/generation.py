"""Summaries from page images, built exactly as the trainer builds its inputs.

Each document goes through the trainer's own :func:`prepare_document`, :func:`page_features` and
:func:`build_batch` (prompt without summary), so image positions, the text-encoder slot and the
position ids (0..n-1 per document) match training. Documents are then left-padded into batches
for ``generate``; left padding keeps every prompt's positions unchanged.
"""

from __future__ import annotations

import dataclasses
import io
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from transformers import StoppingCriteria, StoppingCriteriaList

from deepsynth.data.rendered import RenderedDocument
from deepsynth.errors import ConfigError
from deepsynth.inference.config import GenerationConfig
from deepsynth.inference.loading import LoadedModel
from deepsynth.models.batching import build_batch, page_features, prepare_document
from deepsynth.models.feature_cache import FeatureCache
from deepsynth.models.preprocessing import view_spec
from deepsynth.models.vision import ocr_core
from deepsynth.progress import progress_bar


@dataclass
class GenerationOutput:
    """One generated summary.

    Attributes:
        text: The decoded summary (special tokens removed, stripped).
        token_ids: Generated ids (EOS and padding removed).
        latency_s: Seconds spent on this document (its encoding plus its share of the batch's decoding).
    """

    text: str
    token_ids: list[int]
    latency_s: float


def _png(image: Any) -> bytes:
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        return buffer.getvalue()
    raise TypeError(f"a page must be a PIL image or PNG bytes, got {type(image).__name__}")


def as_document(item: Any, mode: str, instruction: str | None = None, index: int = 0) -> RenderedDocument:
    """Turn one input (a :class:`RenderedDocument` or a sequence of page images) into a prompt document.

    Args:
        item: The document, or its pages as PIL images / PNG bytes.
        mode: Rendering mode of bare pages (sets the view sizes).
        instruction: Overrides the document's instruction when given.
        index: Used to name bare page lists.

    Returns:
        A :class:`RenderedDocument` without a summary.
    """
    if isinstance(item, RenderedDocument):
        return dataclasses.replace(item, summary=None, instruction=instruction or item.instruction)
    if isinstance(item, (Image.Image, bytes, bytearray)):
        item = [item]
    pages = [_png(p) for p in item]
    first = Image.open(io.BytesIO(pages[0]))
    return RenderedDocument(
        id=f"input-{index}",
        split="inference",
        mode=mode,
        text="",
        summary=None,
        instruction=instruction,
        pages=pages,
        page_width=first.width,
        page_height=first.height,
        chars_total=0,
        chars_rendered=0,
        truncated=False,
    )


def prompt_embeddings(loaded: LoadedModel, doc: RenderedDocument, device: torch.device) -> torch.Tensor:
    """The decoder's input embeddings for one document's prompt (vision tokens, instruction), ``(length, hidden)``."""
    model, tokenizer = loaded.model, loaded.tokenizer
    sam_size = ocr_core(model).config.vision_config.sam_config.image_size
    prepared = prepare_document(
        doc,
        view_spec(doc.mode, sam_size),
        tokenizer,
        default_instruction=loaded.instruction,
        max_length=loaded.max_length,
        max_summary_tokens=1,
        text_slot=loaded.text_encoder is not None,
    )
    features = page_features(model, prepared, FeatureCache("inference", enabled=False))
    text = loaded.text_encoder([prepared.instruction]) if loaded.text_encoder is not None else None
    batch = build_batch(model, [prepared], [features], text, tokenizer.pad_token_id, device)
    return batch.inputs_embeds[0]


def left_padded(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack prompt embeddings of different lengths, padded on the left for generation: ``(embeds, attention_mask)``."""
    longest = max(r.shape[0] for r in rows)
    embeds = rows[0].new_zeros(len(rows), longest, rows[0].shape[-1])
    mask = torch.zeros(len(rows), longest, dtype=torch.long, device=rows[0].device)
    for i, row in enumerate(rows):
        embeds[i, longest - row.shape[0] :] = row
        mask[i, longest - row.shape[0] :] = 1
    return embeds, mask


class _EachStep(StoppingCriteria):
    """A stopping criterion that hands each step's ids to a callback, which says per row whether it is done."""

    def __init__(self, on_step: Callable[[torch.Tensor], torch.Tensor]):
        self.on_step = on_step

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        return self.on_step(input_ids).to(input_ids.device)


@torch.no_grad()
def decode(
    model: Any,
    tokenizer: Any,
    rows: list[torch.Tensor],
    config: GenerationConfig,
    *,
    limits: Sequence[int] | None = None,
    adapter_names: Sequence[str] | None = None,
    on_step: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[list[int]]:
    """Decode prompts together (left-padded) and return each row's generated ids, EOS and padding removed.

    The one decode loop: :func:`generate_with_stats` uses it for one adapter, the server for a batch
    whose rows each name their own peft adapter.

    Args:
        model: The (PEFT-wrapped) OCR model.
        tokenizer: Its tokenizer.
        rows: One prompt per row, from :func:`prompt_embeddings`.
        config: Decoding settings (``max_new_tokens`` for the whole batch; ``batch_size`` is not used here).
        limits: Per row, the most tokens kept (a greedy run with that limit gives exactly these ids).
        adapter_names: Per row, the peft adapter to decode it with (peft's mixed-adapter batches).
        on_step: Called after every decoding step with the ids generated so far ``(rows, steps)``;
            returns a bool per row, true where that row is done (it stops; the others go on).

    Returns:
        Generated token ids per row, in order.
    """
    embeds, mask = left_padded(rows)
    kwargs: dict[str, Any] = {"do_sample": not config.greedy}
    if not config.greedy:
        kwargs.update(temperature=config.temperature, top_p=config.top_p)
    if config.no_repeat_ngram_size:
        kwargs["no_repeat_ngram_size"] = config.no_repeat_ngram_size
    if adapter_names is not None:
        kwargs["adapter_names"] = list(adapter_names)
    if on_step is not None:
        kwargs["stopping_criteria"] = StoppingCriteriaList([_EachStep(on_step)])
    with warnings.catch_warnings():
        # The prompt is image embeddings: n-grams are meant to be checked on the summary only.
        warnings.filterwarnings("ignore", message="Passing `no_repeat_ngram_size` with `inputs_embeds`")
        generated = model.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=config.max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **kwargs,
        )
    outputs = []
    for i, ids in enumerate(generated.tolist()):
        if limits is not None:
            ids = ids[: limits[i]]
        if tokenizer.eos_token_id in ids:
            ids = ids[: ids.index(tokenizer.eos_token_id)]
        outputs.append([t for t in ids if t != tokenizer.pad_token_id])
    return outputs


@torch.no_grad()
def generate_with_stats(
    loaded: LoadedModel,
    documents: Sequence[Any],
    config: GenerationConfig | None = None,
    *,
    instruction: str | None = None,
    mode: str | None = None,
    progress: bool = False,
) -> list[GenerationOutput]:
    """Generate a summary for each document, with token ids and per-document latency.

    Args:
        loaded: From :func:`deepsynth.inference.load_adapter_model` (or a base model).
        documents: :class:`RenderedDocument` objects, or per document a list of page images / PNG bytes.
        config: Decoding settings (default :class:`GenerationConfig`).
        instruction: Instruction for every document (default: the document's, else the training one).
        mode: Rendering mode of bare page images (default: the training mode, else ``base``).
        progress: Show a tqdm bar.

    Returns:
        One :class:`GenerationOutput` per document, in order.
    """
    config = config or GenerationConfig()
    model, tokenizer = loaded.model, loaded.tokenizer
    device = next(model.parameters()).device
    mode = mode or loaded.mode or "base"
    docs = [as_document(d, mode, instruction, i) for i, d in enumerate(documents)]
    outputs: list[GenerationOutput] = []
    bar = progress_bar(progress, total=len(docs), desc="generate", unit="doc")
    for start in range(0, len(docs), config.batch_size):
        group = docs[start : start + config.batch_size]
        encode_s, rows = [], []
        for doc in group:
            began = time.perf_counter()
            rows.append(prompt_embeddings(loaded, doc, device))
            encode_s.append(time.perf_counter() - began)
        if not config.greedy:
            torch.manual_seed(config.seed + start)
        began = time.perf_counter()
        generated = decode(model, tokenizer, rows, config)
        decode_share = (time.perf_counter() - began) / len(rows)
        for i, ids in enumerate(generated):
            text = tokenizer.decode(ids, skip_special_tokens=True).strip()
            outputs.append(GenerationOutput(text, ids, encode_s[i] + decode_share))
        bar.update(len(group))
    bar.close()
    return outputs


def generate_summaries(
    model: Any,
    tokenizer: Any = None,
    documents: Sequence[Any] = (),
    *,
    instruction: str | None = None,
    max_new_tokens: int = 128,
    no_repeat_ngram_size: int = 0,
    batch_size: int = 4,
    greedy: bool = True,
    mode: str | None = None,
    progress: bool = False,
) -> list[str]:
    """Summaries of ``documents`` (rendered documents or page images), preprocessed as in training.

    Args:
        model: A :class:`LoadedModel`, or a (PEFT-wrapped) OCR model used with ``tokenizer``.
        tokenizer: The tokenizer when ``model`` is a bare model (ignored for a :class:`LoadedModel`).
        documents: :class:`RenderedDocument` objects or per-document page images / PNG bytes.
        instruction: Instruction for every document (default: each document's, else the training one).
        max_new_tokens: Longest summary.
        no_repeat_ngram_size: Forbid repeated n-grams of this size (0: off).
        batch_size: Documents decoded together.
        greedy: Greedy decoding (else sampling).
        mode: Rendering mode of bare page images.
        progress: Show a progress bar.

    Returns:
        One summary per document.
    """
    if not isinstance(model, LoadedModel):
        if tokenizer is None:
            raise ConfigError("generate_summaries: pass the tokenizer with a bare model")
        from deepsynth.models.loading import ModelSource

        model = LoadedModel(model, tokenizer, ModelSource("model", "model", None, type(model), None))
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, no_repeat_ngram_size=no_repeat_ngram_size, batch_size=batch_size, greedy=greedy
    )
    return [
        o.text
        for o in generate_with_stats(model, documents, config, instruction=instruction, mode=mode, progress=progress)
    ]
