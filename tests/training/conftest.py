"""Fixtures for training tests: the tiny profile (built once per session) and small rendered datasets."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import io  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from deepsynth.data.rendered import RenderedDatasetWriter  # noqa: E402

torch.set_num_threads(1)

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
SUMMARIES = [
    "Revenue grew twelve percent.",
    "The bridge reopens in May.",
    "Rain is expected all week.",
    "The team won the final.",
]


def draw_page(text: str, size=(512, 512)) -> bytes:
    """A white page with ``text`` drawn in black, as PNG bytes."""
    img = Image.new("RGB", size, "white")
    font = ImageFont.truetype(FONT, 28) if os.path.exists(FONT) else ImageFont.load_default(28)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(text.split(". ")):
        draw.text((20, 20 + 40 * i), line, fill="black", font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_dataset(path, n_docs=4, mode="tiny", size=(512, 512), pages=1, instruction=None):
    """A small rendered dataset with ``n_docs`` training documents (summaries cycle through SUMMARIES)."""
    with RenderedDatasetWriter(path, settings={"mode": mode, "test": True}) as writer:
        for i in range(n_docs):
            summary = SUMMARIES[i % len(SUMMARIES)]
            text = f"Document {i}. {summary} More details follow in the body"
            writer.write({
                "id": f"doc-{i}", "split": "train", "mode": mode, "text": text, "summary": summary,
                "instruction": instruction, "pages": [draw_page(f"{text}. Page {p + 1}", size) for p in range(pages)],
                "page_width": size[0], "page_height": size[1], "chars_total": len(text),
                "chars_rendered": len(text), "truncated": False, "missing_glyphs": [], "doc_hash": f"h{i}",
            })
    from deepsynth.data.rendered import RenderedDataset

    return RenderedDataset(path)


@pytest.fixture(scope="session")
def make_rendered():
    """:func:`write_dataset` as a fixture (a bare ``from conftest import`` may find another conftest)."""
    return write_dataset


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """Four one-page documents in the ``tiny`` mode."""
    return write_dataset(tmp_path_factory.mktemp("rendered"))


@pytest.fixture
def tiny_config(deepsynth_home, tmp_path):
    """A factory of fast TrainerConfigs on the tiny profile."""
    from deepsynth.training.config import TrainerConfig

    def make(**overrides):
        values = dict(model_name="tiny", deepsynth_home=str(deepsynth_home), output_dir=str(tmp_path / "out"),
                      batch_size=2, num_epochs=3, learning_rate=1e-2, lora_rank=8, lora_alpha=16,
                      max_length=256, max_summary_tokens=32, progress_bar=False, device="cpu")
        values.update(overrides)
        return TrainerConfig(**values)

    return make
