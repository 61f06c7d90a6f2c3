import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from deepsynth.errors import ConfigError, DeepSynthError
from deepsynth.models.preprocessing import best_tile_grid, build_example, preprocess_page, view_spec
from deepsynth.models.vision import encode_page, project_page


def page(size, text="Quarterly revenue grew by 12 percent."):
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).text((8, 8), text, fill="black")
    return img


def test_full_size_token_counts_match_deepseek_ocr_modes():
    counts = {}
    for mode, size in [("tiny", (512, 512)), ("small", (640, 640)), ("base", (1024, 1024)), ("large", (1280, 1280))]:
        counts[mode] = preprocess_page(page(size), view_spec(mode)).num_image_tokens
    # n x n vision tokens + one newline per row + the view separator.
    assert counts == {"tiny": 8 * 9 + 1, "small": 10 * 11 + 1, "base": 16 * 17 + 1, "large": 20 * 21 + 1}


def test_gundam_page_is_a_global_view_plus_2x3_tiles():
    inputs = preprocess_page(page((1280, 1920)), view_spec("gundam"))
    assert inputs.global_view.shape == (3, 1024, 1024)
    assert inputs.local_views.shape == (6, 3, 640, 640) and inputs.grid == (2, 3)
    assert inputs.num_image_tokens == 273 + 30 * 21
    assert best_tile_grid(1920, 1280, 640) == (3, 2)


def test_padding_is_gray_127_and_normalisation_is_half_half():
    inputs = preprocess_page(page((512, 1024)), view_spec("base"))  # portrait: padded left and right
    gray = (127 / 255 - 0.5) / 0.5
    np.testing.assert_allclose(inputs.global_view[:, :, :100], gray, atol=1e-6)
    np.testing.assert_allclose(inputs.global_view[:, 600, 400], 1.0, atol=1e-6)  # white page
    assert inputs.global_view.min() >= -1.0


def test_tiny_profile_scales_views_to_its_sam_size():
    spec = view_spec("gundam", 128)
    assert (spec.global_size, spec.tile_size) == (128, 80)
    with pytest.raises(ConfigError):
        view_spec("huge")


@pytest.mark.parametrize("mode, size", [("base", (1024, 1024)), ("gundam", (1280, 1920)), ("small", (640, 640))])
def test_split_encode_and_project_equals_the_models_own_image_features(tiny, mode, size):
    model = tiny[0]
    inputs = preprocess_page(page(size), view_spec(mode, 128))
    mine = project_page(model, encode_page(model, inputs))
    kwargs = {}
    if inputs.local_views is not None:
        kwargs = dict(
            pixel_values_local=torch.from_numpy(inputs.local_views),
            num_local_patches=[len(inputs.local_views)],
            patches_grid=[list(inputs.grid)],
        )
    with torch.no_grad():
        reference = model.model.get_image_features(torch.from_numpy(inputs.global_view)[None], **kwargs)
    assert mine.shape == (inputs.num_image_tokens, 64)
    torch.testing.assert_close(mine, reference.pooler_output[0])


def test_example_masks_prompt_and_images(tiny):
    tokenizer = tiny[1]
    ex = build_example(
        tokenizer,
        [7, 37],
        "Summarize this text:",
        "Revenue grew.",
        max_length=256,
        max_summary_tokens=32,
        text_slot=True,
    )
    assert ex.input_ids[0] == 0 and ex.text_slot == 1
    assert ex.input_ids.count(128815) == 44
    summary = tokenizer("Revenue grew.", add_special_tokens=False)["input_ids"]
    assert [t for t in ex.labels if t != -100] == summary + [1]
    first = ex.labels.index(summary[0])
    assert ex.input_ids[first:] == summary + [1] and set(ex.labels[:first]) == {-100}
    assert tokenizer.decode(ex.input_ids[2 + 44 : first]) == "\nSummarize this text:"


def test_summary_is_truncated_to_fit_and_oversized_prompts_fail(tiny):
    tokenizer = tiny[1]
    ex = build_example(tokenizer, [7], "Sum:", "word " * 200, max_length=40, max_summary_tokens=500)
    assert len(ex.input_ids) == 40 and ex.input_ids[-1] == 1
    with pytest.raises(DeepSynthError, match="max_length"):
        build_example(tokenizer, [273], "Sum:", "x", max_length=100, max_summary_tokens=10)
