"""The grayscale PNG writer: any reader decodes its bytes to the exact pixels."""

import io

import numpy as np
import pytest
from PIL import Image

from deepsynth.rendering.png import encode_gray_png


@pytest.mark.parametrize("level", [0, 1, 9])
def test_round_trip_is_lossless(level):
    pixels = np.random.default_rng(level).integers(0, 256, size=(37, 53), dtype=np.uint8)
    image = Image.fromarray(pixels, mode="L")
    decoded = Image.open(io.BytesIO(encode_gray_png(image, level)))
    decoded.load()
    assert decoded.format == "PNG" and decoded.mode == "L" and decoded.size == (53, 37)
    assert np.array_equal(np.asarray(decoded), pixels)


def test_text_page_compresses_like_pillow():
    page = Image.new("L", (256, 256), 255)
    page.paste(0, (20, 20, 200, 30))
    ours = encode_gray_png(page)
    buffer = io.BytesIO()
    page.save(buffer, format="PNG", compress_level=1)
    assert len(ours) < 2 * len(buffer.getvalue())


def test_rejects_other_modes():
    with pytest.raises(ValueError, match="expected an 'L' image, got 'RGB'"):
        encode_gray_png(Image.new("RGB", (4, 4)))
