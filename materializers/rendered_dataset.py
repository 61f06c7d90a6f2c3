"""Materializer for :class:`deepsynth.data.rendered.RenderedDataset` (Parquet shards of PNG pages)."""

from __future__ import annotations

import io
import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

from deepsynth.data.rendered import RenderedDataset
from materializers.files import local_dir, upload_dir

THUMBNAILS = 12


def thumbnail_grid(dataset: RenderedDataset, count: int = THUMBNAILS, width: int = 180) -> bytes:
    """A PNG grid of the first page of the first ``count`` rows, captioned with id and mode."""
    from PIL import Image, ImageDraw

    tiles = []
    for row in dataset.iter_rows(columns=["id", "mode", "pages"], batch_size=4):
        if not row["pages"]:
            continue
        page = Image.open(io.BytesIO(row["pages"][0])).convert("L")
        page.thumbnail((width, width * 2))
        tile = Image.new("L", (width, page.height + 16), 255)
        tile.paste(page, (0, 16))
        ImageDraw.Draw(tile).text((2, 2), f"{row['id'][:18]} [{row['mode']}]", fill=0)
        tiles.append(tile)
        if len(tiles) == count:
            break
    columns = 4
    cell_h = max((t.height for t in tiles), default=32)
    grid = Image.new("L", (columns * (width + 6), max(1, -(-len(tiles) // columns)) * (cell_h + 6)), 230)
    for i, tile in enumerate(tiles):
        grid.paste(tile, ((i % columns) * (width + 6), (i // columns) * (cell_h + 6)))
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG")
    return buffer.getvalue()


class RenderedDatasetMaterializer(BaseMaterializer):
    """Stores the shard folder as is; the visualization is a grid of page thumbnails."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (RenderedDataset,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def load(self, data_type: type[Any]) -> RenderedDataset:
        return RenderedDataset(local_dir(self.uri))

    def save(self, data: RenderedDataset) -> None:
        # Steps write straight into their output URI; then there is nothing to copy.
        upload_dir(data.path, self.uri)

    def extract_metadata(self, data: RenderedDataset) -> dict[str, Any]:
        m = data.manifest
        meta = {key: m[key] for key in ("rows", "pages", "rows_per_split", "rows_per_mode") if key in m}
        meta.update({k: v for k, v in m.items() if k in ("content_hash", "truncated", "missing_glyph_documents")})
        return meta

    def save_visualizations(self, data: RenderedDataset) -> dict[str, VisualizationType]:
        path = os.path.join(self.uri, "thumbnails.png")
        with fileio.open(path, "wb") as handle:
            handle.write(thumbnail_grid(data))
        return {path: VisualizationType.IMAGE}
