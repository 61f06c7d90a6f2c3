"""Step: render every document to DeepSeek-OCR page images."""

from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.config import CachePolicy

from deepsynth.data import generator as render_module
from deepsynth.data.documents import DocumentDataset
from deepsynth.data.rendered import RenderedDataset
from deepsynth.paths import deepsynth_home
from deepsynth.rendering.config import RenderSettings
from steps.common import output_dir

# The step's own code is tiny; what it produces depends on the rendering modules. Named by import path:
# ZenML resolves a module object through its client, which sets up a store at import.
RENDER_CACHE = CachePolicy(
    source_dependencies=[
        "deepsynth.data.generator",
        *(f"deepsynth.rendering.{name}" for name in ("config", "fonts", "layout", "page_cache", "renderer")),
    ]
)


@step(cache_policy=RENDER_CACHE)
def render_pages(documents: DocumentDataset, settings: RenderSettings) -> Annotated[RenderedDataset, "rendered"]:
    """Render ``documents`` with the ``render`` section's settings into Parquet shards of PNG pages."""
    return render_module.render_dataset(
        documents.rows(),
        settings,
        output_dir("rendered"),
        total=documents.table.num_rows,
        extra_manifest={"content_hash": documents.content_hash, "source": documents.source},
        cache_dir=deepsynth_home() / "render-cache",
    )
