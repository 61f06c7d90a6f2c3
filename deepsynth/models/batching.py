"""From rendered documents to the decoder's ``inputs_embeds``, labels and attention mask.

Image positions are filled with projected vision features, and the optional text-encoder slot
with the instruction embedding; everything else is the decoder's own token embedding. The same
function serves training and inference, so an adapter sees the layout it was trained on.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import torch
from PIL import Image

from deepsynth.data.rendered import RenderedDocument
from deepsynth.models.preprocessing import (
    Example,
    ViewSpec,
    best_tile_grid,
    build_example,
    preprocess_page,
    queries_per_side,
)
from deepsynth.models.vision import PageFeatures, encode_page, ocr_core, project_page, unwrap_model


@dataclass
class PreparedDocument:
    """A training document with its token ids (pixels are decoded lazily, per step)."""

    doc: RenderedDocument
    spec: ViewSpec
    example: Example
    instruction: str

    @property
    def view_key(self) -> str:
        """Describes the preprocessing, for feature-cache keys."""
        return f"{self.doc.mode}:{self.spec.global_size}:{self.spec.tile_size}:{self.spec.pad}"


def page_token_count(png: bytes, spec: ViewSpec) -> int:
    """Image positions a page fills, from its PNG header alone.

    Equal to ``preprocess_page(image, spec).num_image_tokens`` (a global view of ``q x (q + 1) + 1``
    positions, plus the tiles' rows when the page is larger than a tile) without decoding, resizing
    or normalising the pixels: preparation reads only each page's size.
    """
    with Image.open(io.BytesIO(png)) as image:
        width, height = image.size
    q = queries_per_side(spec.global_size)
    tokens = q * (q + 1) + 1
    if spec.tile_size is not None and max(width, height) > spec.tile_size:
        cols, rows = best_tile_grid(width, height, spec.tile_size)
        ql = queries_per_side(spec.tile_size)
        tokens += (rows * ql) * (cols * ql + 1)
    return tokens


def prepare_document(
    doc: RenderedDocument,
    spec: ViewSpec,
    tokenizer,
    *,
    default_instruction: str,
    max_length: int,
    max_summary_tokens: int,
    text_slot: bool,
) -> PreparedDocument:
    """Tokenize one document (image positions are counted from the pages' sizes; no pixels are decoded).

    Args:
        doc: The rendered document.
        spec: View spec of its mode for this model.
        tokenizer: DeepSeek-OCR's tokenizer.
        default_instruction: Used when the document carries no instruction.
        max_length: Longest sequence.
        max_summary_tokens: Longest summary.
        text_slot: Reserve a position for a text-encoder embedding.
    """
    counts = [page_token_count(png, spec) for png in doc.pages]
    instruction = doc.instruction or default_instruction
    example = build_example(
        tokenizer,
        counts,
        instruction,
        doc.summary,
        max_length=max_length,
        max_summary_tokens=max_summary_tokens,
        text_slot=text_slot,
    )
    return PreparedDocument(doc, spec, example, instruction)


def page_features(model, prepared: PreparedDocument, cache) -> list[PageFeatures]:
    """Frozen-encoder features of each page of a document, through the feature cache."""
    images = None
    out = []
    for index, png in enumerate(prepared.doc.pages):

        def compute(index=index):
            nonlocal images
            images = images or prepared.doc.page_images()
            return encode_page(model, preprocess_page(images[index], prepared.spec))

        out.append(cache.get_or_compute(png, prepared.view_key, compute))
    return out


@dataclass
class Batch:
    """Padded decoder inputs of a micro-batch."""

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    num_tokens: int
    num_targets: int  # positions with a label: where the LM head runs
    target_index: torch.Tensor  # flat indices into ``[batch, length - 1]`` of the positions with a label


def build_batch(
    model,
    items: list[PreparedDocument],
    features: list[list[PageFeatures]],
    text_embeddings: torch.Tensor | None,
    pad_id: int,
    device: torch.device,
) -> Batch:
    """Assemble ``inputs_embeds`` for a micro-batch (right-padded).

    Args:
        model: The (wrapped) OCR model.
        items: The documents.
        features: Per document, per page encoder features.
        text_embeddings: ``[len(items), hidden]`` instruction embeddings, or ``None``.
        pad_id: Pad token id.
        device: Where the decoder runs.

    Returns:
        The :class:`Batch`.
    """
    base = unwrap_model(model)
    embed = base.get_input_embeddings()
    image_id = base.config.image_token_id
    longest = max(len(it.example.input_ids) for it in items)
    ids = torch.full((len(items), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(items), longest), -100, dtype=torch.long)
    mask = torch.zeros((len(items), longest), dtype=torch.long)
    for row, it in enumerate(items):
        n = len(it.example.input_ids)
        ids[row, :n] = torch.tensor(it.example.input_ids)
        labels[row, :n] = torch.tensor(it.example.labels)
        mask[row, :n] = 1
    # Everything that needs a look at the values is worked out here on the host, so assembling the
    # batch never waits for the device.
    image_positions = [(ids[row] == image_id).nonzero(as_tuple=True)[0] for row in range(len(items))]
    targets = labels[:, 1:]
    target_index = (targets != -100).flatten().nonzero(as_tuple=True)[0]
    num_tokens, num_targets = int(mask.sum()), int(target_index.numel())
    ids, labels, mask, target_index = (_to_device(t, device) for t in (ids, labels, mask, target_index))
    embeds = embed(ids)
    rows = []
    for row, (it, feats) in enumerate(zip(items, features)):
        image = torch.cat([project_page(model, f) for f in feats], dim=0).to(embeds.dtype)
        if len(image_positions[row]) != image.shape[0]:
            raise ValueError(
                f"document {it.doc.id}: {len(image_positions[row])} image positions, {image.shape[0]} features"
            )
        row_embeds = embeds[row].index_copy(0, _to_device(image_positions[row], device), image)
        if text_embeddings is not None and it.example.text_slot is not None:
            slot = torch.tensor([it.example.text_slot], device=device)
            row_embeds = row_embeds.index_copy(0, slot, text_embeddings[row : row + 1].to(row_embeds.dtype))
        rows.append(row_embeds)
    return Batch(torch.stack(rows), mask, labels, num_tokens, num_targets, target_index)


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a host tensor without making the host wait (pinned memory on CUDA)."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


# Vocabulary rows of the LM head handled at once by :class:`HeadCrossEntropy`: a ``[tokens, chunk]``
# block of logits stays in cache from its matmul to its gradient matmul.
HEAD_CHUNK = 4096


class HeadCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of ``hidden @ weight.T`` against ``targets``, without a ``[N, vocab]`` tensor.

    The float32 arithmetic of ``cross_entropy(linear(hidden, weight), targets)`` — per token
    ``logsumexp(logits) - logits[target]``, gradient ``(softmax(logits) - onehot(target)) @ weight / N`` —
    done one vocabulary chunk at a time while the chunk's logits are still in cache: its matmul, its
    maximum, ``exp(logits - max)`` in place, its sum and its share of the gradient matmul. The chunks are
    combined exactly afterwards (``lse = log sum_c exp(max_c) * sum_c``; each chunk's gradient share is
    rescaled by ``exp(max_c - lse)``). Nothing vocabulary-wide is written to memory or kept for backward,
    no zero-filled ``[N, vocab]`` gradient is allocated, and log-softmax's backward pass disappears; the
    result matches the reference to float32 rounding (and is closer to a float64 computation). The
    frozen ``weight`` gets no gradient.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, need_grad: bool):
        n, vocab = hidden.shape[0], weight.shape[0]
        target_logit = hidden.new_zeros(n)
        maxima, sums, shares = [], [], []
        for start in range(0, vocab, HEAD_CHUNK):
            chunk = weight[start : start + HEAD_CHUNK]
            logits = torch.mm(hidden, chunk.t())
            local = targets - start
            inside = (local >= 0) & (local < chunk.shape[0])  # no host sync: a masked gather
            picked = logits.gather(1, local.clamp(0, chunk.shape[0] - 1)[:, None]).squeeze(1)
            target_logit = torch.where(inside, picked, target_logit)
            peak = logits.amax(dim=1)
            logits.sub_(peak[:, None]).exp_()
            maxima.append(peak)
            sums.append(logits.sum(dim=1))
            if need_grad:
                shares.append(torch.mm(logits, chunk))
        maxima, sums = torch.stack(maxima, 1), torch.stack(sums, 1)  # [n, chunks]
        top = maxima.amax(dim=1, keepdim=True)
        lse = top.squeeze(1) + torch.log((sums * torch.exp(maxima - top)).sum(dim=1))
        if need_grad:
            weights = torch.exp(maxima - lse[:, None])  # softmax = exp(logits - max_c) * exp(max_c - lse)
            grad = torch.einsum("nc,cnh->nh", weights, torch.stack(shares, 0)).sub_(weight[targets]).div_(n)
            ctx.save_for_backward(grad)
        return (lse - target_logit).sum() / n

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None, None


def fused_head_applies(head: torch.nn.Module, hidden: torch.Tensor) -> bool:
    """The fused loss covers a plain, frozen float32 ``nn.Linear`` head outside autocast; else the reference path."""
    weight = getattr(head, "weight", None)
    return (
        type(head) is torch.nn.Linear
        and head.bias is None
        and weight is not None
        and not weight.requires_grad
        and weight.dtype == torch.float32
        and hidden.dtype == torch.float32
        and weight.device == hidden.device
        and not torch.is_autocast_enabled(hidden.device.type)
    )


def supervised_loss(model, batch: Batch) -> torch.Tensor:
    """Mean next-token cross-entropy over the summary positions only.

    Equal to the model's own ``labels=`` loss, but the 129k-wide LM head runs only where a label
    exists: prompt, image and padding positions are never projected to the vocabulary. With a frozen
    float32 head (LoRA, QLoRA) the projection and the loss are fused (:class:`HeadCrossEntropy`);
    a trainable, quantized or autocast head takes the plain ``cross_entropy`` path.
    """
    hidden = ocr_core(model)(
        inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask, use_cache=False
    ).last_hidden_state
    width = hidden.shape[-1]
    selected = hidden[:, :-1].reshape(-1, width).index_select(0, batch.target_index)
    targets = batch.labels[:, 1:].reshape(-1).index_select(0, batch.target_index)
    head = unwrap_model(model).lm_head
    if selected.shape[0] and fused_head_applies(head, selected):
        need_grad = torch.is_grad_enabled() and selected.requires_grad
        return HeadCrossEntropy.apply(selected, head.weight, targets, need_grad)
    logits = head(selected)
    return torch.nn.functional.cross_entropy(logits.float(), targets)
