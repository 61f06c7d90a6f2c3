"""From rendered documents to the decoder's ``inputs_embeds``, labels and attention mask.

Image positions are filled with projected vision features, and the optional text-encoder slot
with the instruction embedding; everything else is the decoder's own token embedding. The same
function serves training and inference, so an adapter sees the layout it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepsynth.data.rendered import RenderedDocument
from deepsynth.models.preprocessing import Example, ViewSpec, build_example, preprocess_page
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


def prepare_document(doc: RenderedDocument, spec: ViewSpec, tokenizer, *, default_instruction: str,
                     max_length: int, max_summary_tokens: int, text_slot: bool) -> PreparedDocument:
    """Tokenize one document (its pages are measured once to count image positions).

    Args:
        doc: The rendered document.
        spec: View spec of its mode for this model.
        tokenizer: DeepSeek-OCR's tokenizer.
        default_instruction: Used when the document carries no instruction.
        max_length: Longest sequence.
        max_summary_tokens: Longest summary.
        text_slot: Reserve a position for a text-encoder embedding.
    """
    counts = [preprocess_page(img, spec).num_image_tokens for img in doc.page_images()]
    instruction = doc.instruction or default_instruction
    example = build_example(tokenizer, counts, instruction, doc.summary, max_length=max_length,
                            max_summary_tokens=max_summary_tokens, text_slot=text_slot)
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


def build_batch(model, items: list[PreparedDocument], features: list[list[PageFeatures]],
                text_embeddings: torch.Tensor | None, pad_id: int, device: torch.device) -> Batch:
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
    ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
    embeds = embed(ids)
    rows = []
    for row, (it, feats) in enumerate(zip(items, features)):
        image = torch.cat([project_page(model, f) for f in feats], dim=0).to(embeds.dtype)
        positions = (ids[row] == image_id).nonzero(as_tuple=True)[0]
        if len(positions) != image.shape[0]:
            raise ValueError(f"document {it.doc.id}: {len(positions)} image positions, {image.shape[0]} features")
        row_embeds = embeds[row].index_copy(0, positions, image)
        if text_embeddings is not None and it.example.text_slot is not None:
            slot = torch.tensor([it.example.text_slot], device=device)
            row_embeds = row_embeds.index_copy(0, slot, text_embeddings[row : row + 1].to(row_embeds.dtype))
        rows.append(row_embeds)
    return Batch(torch.stack(rows), mask, labels, int(mask.sum().item()))


def supervised_loss(model, batch: Batch) -> torch.Tensor:
    """Mean next-token cross-entropy over the summary positions only.

    Equal to the model's own ``labels=`` loss, but the 129k-wide LM head runs only where a label
    exists: prompt, image and padding positions are never projected to the vocabulary.
    """
    hidden = ocr_core(model)(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask,
                             use_cache=False).last_hidden_state
    targets = batch.labels[:, 1:]
    keep = targets != -100
    logits = unwrap_model(model).lm_head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])
