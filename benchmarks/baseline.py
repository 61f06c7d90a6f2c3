"""The baseline the training benchmarks compare against: ``transformers.Trainer`` + PEFT fed by a plain collate.

Every step decodes, preprocesses and encodes each page again (no feature cache), the way a plain
Trainer recipe for a vision-language model does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from deepsynth.models.preprocessing import build_example, preprocess_page, view_spec
from deepsynth.training.config import TrainerConfig


def trainer_collate(
    tokenizer: Any, sam_size: int, config: TrainerConfig, pixel_dtype: torch.dtype | None = None
) -> Callable[[list], dict[str, torch.Tensor]]:
    """A ``data_collator`` that turns rendered documents into the model's own inputs (first page, right-padded)."""

    def collate(batch: list) -> dict[str, torch.Tensor]:
        pixels, examples = [], []
        for doc in batch:
            page = preprocess_page(doc.page_images()[0], view_spec(doc.mode, sam_size))
            pixels.append(torch.from_numpy(page.global_view))
            examples.append(
                build_example(
                    tokenizer,
                    [page.num_image_tokens],
                    doc.instruction or config.instruction_prompt,
                    doc.summary,
                    max_length=config.max_length,
                    max_summary_tokens=config.max_summary_tokens,
                )
            )
        longest = max(len(e.input_ids) for e in examples)
        ids = torch.full((len(batch), longest), tokenizer.pad_token_id)
        labels = torch.full((len(batch), longest), -100)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, e in enumerate(examples):
            ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
            labels[row, : len(e.labels)] = torch.tensor(e.labels)
            mask[row, : len(e.input_ids)] = 1
        return {
            "input_ids": ids,
            "labels": labels,
            "attention_mask": mask,
            "pixel_values": torch.stack(pixels).to(pixel_dtype or torch.float32),
        }

    return collate
