"""Page images → pixel arrays and prompts → token ids, as DeepSeek-OCR expects them (PIL/numpy only).

Views follow upstream DeepSeek-OCR: ``tiny``/``small`` pages are resized to a square, ``base``/``large``
are resized keeping the aspect ratio and padded with gray 127, and ``gundam`` adds local 640-px tiles
(best grid of 2–9 tiles for the aspect ratio) to a padded 1024-px global view. Pixels are scaled to
[0, 1] and normalised with mean = std = 0.5. Sizes scale with the model's SAM input size, so the
tiny profile (128-px SAM) sees the same layout at 1/8 of the resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageOps

from deepsynth.errors import ConfigError, DeepSynthError
from deepsynth.models.architecture import NATIVE_IMAGE_SIZE
from deepsynth.models.tokenizer import IMAGE_TOKEN

PAD_GRAY = (127, 127, 127)
MEAN = 0.5
STD = 0.5
PATCH_SIZE = 16
DOWNSAMPLE = 4  # SAM's two stride-2 convolutions after 16-px patches
MIN_TILES, MAX_TILES = 2, 9


@dataclass(frozen=True)
class ViewSpec:
    """How one DeepSeek-OCR mode turns a page into views.

    Attributes:
        global_size: Side of the global (whole-page) view.
        tile_size: Side of the local tiles, or ``None`` for a single view.
        pad: Keep the aspect ratio and pad to a square (else resize straight to the square).
    """

    global_size: int
    tile_size: int | None
    pad: bool


MODE_VIEWS: dict[str, ViewSpec] = {
    "tiny": ViewSpec(512, None, False),
    "small": ViewSpec(640, None, False),
    "base": ViewSpec(1024, None, True),
    "large": ViewSpec(1280, None, True),
    "gundam": ViewSpec(1024, 640, True),
}


def view_spec(mode: str, sam_image_size: int = NATIVE_IMAGE_SIZE) -> ViewSpec:
    """The :class:`ViewSpec` of ``mode`` for a model whose SAM encoder takes ``sam_image_size`` pixels.

    Args:
        mode: tiny, small, base, large or gundam.
        sam_image_size: The model's native SAM size (1024 for DeepSeek-OCR, 128 for the tiny profile).

    Returns:
        The spec, with sizes scaled by ``sam_image_size / 1024`` and rounded to whole 16-px patches.
    """
    if mode not in MODE_VIEWS:
        raise ConfigError(f"unknown mode {mode!r}; choose one of {', '.join(MODE_VIEWS)}")
    spec = MODE_VIEWS[mode]
    if sam_image_size == NATIVE_IMAGE_SIZE:
        return spec

    def scale(size: int) -> int:
        return max(PATCH_SIZE, round(size * sam_image_size / NATIVE_IMAGE_SIZE / PATCH_SIZE) * PATCH_SIZE)

    return ViewSpec(scale(spec.global_size), scale(spec.tile_size) if spec.tile_size else None, spec.pad)


def queries_per_side(size: int) -> int:
    """Vision tokens along one side of a ``size``-px view (16-px patches, then two stride-2 convs)."""
    return math.ceil(size // PATCH_SIZE / DOWNSAMPLE)


@lru_cache(maxsize=64)
def best_tile_grid(width: int, height: int, tile_size: int) -> tuple[int, int]:
    """Upstream's closest-aspect-ratio tiling: ``(columns, rows)`` with 2–9 tiles.

    Ties go to the larger grid while the page covers more than half of it.
    """
    grids = sorted(
        {(c, r) for c in range(1, MAX_TILES + 1) for r in range(1, MAX_TILES + 1) if MIN_TILES <= c * r <= MAX_TILES},
        key=lambda g: g[0] * g[1],
    )
    aspect = width / height
    best, best_diff = (1, 1), float("inf")
    for cols, rows in grids:
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and width * height > 0.5 * tile_size * tile_size * cols * rows:
            best = (cols, rows)
    return best


@dataclass
class PageInputs:
    """One page as the vision encoder takes it.

    Attributes:
        global_view: float32 array ``[3, G, G]``.
        local_views: float32 array ``[n_tiles, 3, T, T]`` or ``None``.
        grid: ``(columns, rows)`` of the tiles; ``(1, 1)`` without tiles.
    """

    global_view: np.ndarray
    local_views: np.ndarray | None
    grid: tuple[int, int]

    @property
    def num_image_tokens(self) -> int:
        """Positions this page fills in the decoder's input (rows end with a newline token)."""
        q = queries_per_side(self.global_view.shape[-1])
        tokens = q * (q + 1) + 1  # global rows + newlines, then the view separator
        if self.local_views is not None:
            ql = queries_per_side(self.local_views.shape[-1])
            cols, rows = self.grid
            tokens += (rows * ql) * (cols * ql + 1)
        return tokens


def _normalise(image: Image.Image) -> np.ndarray:
    array = np.asarray(image, dtype=np.float32) / 255.0
    return ((array - MEAN) / STD).transpose(2, 0, 1).copy()


def preprocess_page(image: Image.Image, spec: ViewSpec) -> PageInputs:
    """Turn one page image into normalised global (and local) views.

    Args:
        image: The page (any PIL mode; converted to RGB).
        spec: From :func:`view_spec`.

    Returns:
        The page's :class:`PageInputs`.
    """
    image = image.convert("RGB")
    size = spec.global_size
    if spec.pad:
        global_img = ImageOps.pad(image, (size, size), method=Image.Resampling.BICUBIC, color=PAD_GRAY)
    else:
        global_img = image.resize((size, size), Image.Resampling.BICUBIC)
    local, grid = None, (1, 1)
    tile = spec.tile_size
    if tile is not None and max(image.size) > tile:
        cols, rows = best_tile_grid(image.width, image.height, tile)
        resized = image.resize((cols * tile, rows * tile), Image.Resampling.BICUBIC)
        tiles = [
            resized.crop((c * tile, r * tile, (c + 1) * tile, (r + 1) * tile)) for r in range(rows) for c in range(cols)
        ]
        local, grid = np.stack([_normalise(t) for t in tiles]), (cols, rows)
    return PageInputs(_normalise(global_img), local, grid)


@dataclass
class Example:
    """Token ids of one training example.

    Attributes:
        input_ids: BOS, [text-encoder slot], image placeholders, ``\\n`` + instruction, summary, EOS.
        labels: ``-100`` everywhere except the summary tokens and EOS.
        text_slot: Index of the position the instruction embedding replaces, or ``None``.
    """

    input_ids: list[int]
    labels: list[int]
    text_slot: int | None = None


def build_example(
    tokenizer,
    page_token_counts: list[int],
    instruction: str,
    summary: str | None,
    *,
    max_length: int,
    max_summary_tokens: int,
    text_slot: bool = False,
) -> Example:
    """Plain-template prompt ``<image>\\n`` + instruction (one ``<image>`` per page, each expanded to its
    page's number of vision positions), followed by the summary and EOS as labels.

    Args:
        tokenizer: DeepSeek-OCR's tokenizer.
        page_token_counts: :attr:`PageInputs.num_image_tokens` of each page.
        instruction: The instruction text (may be empty).
        summary: Target text, or ``None`` for an inference prompt.
        max_length: Longest allowed sequence; the summary is truncated to fit.
        max_summary_tokens: Longest summary (before EOS).
        text_slot: Reserve one position after BOS for a text-encoder embedding.

    Returns:
        The :class:`Example`.
    """
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    prompt_text = IMAGE_TOKEN * len(page_token_counts) + "\n" + (instruction or "")
    prompt: list[int] = [tokenizer.bos_token_id]
    slot = None
    if text_slot:
        slot = len(prompt)
        prompt.append(tokenizer.pad_token_id)
    pages = iter(page_token_counts)
    for token in tokenizer(prompt_text, add_special_tokens=False)["input_ids"]:
        prompt.extend([image_id] * next(pages) if token == image_id else [token])
    labels = [-100] * len(prompt)
    if summary is None:
        return Example(prompt, labels, slot)
    room = min(max_summary_tokens, max_length - len(prompt) - 1)
    if room < 1:
        raise DeepSynthError(
            f"the prompt alone takes {len(prompt)} tokens (images + instruction); raise max_length ({max_length})"
        )
    target = tokenizer(summary, add_special_tokens=False)["input_ids"][:room] + [tokenizer.eos_token_id]
    return Example(prompt + target, labels + target, slot)
