"""Materializer for :class:`deepsynth.data.documents.DocumentDataset` (Parquet + JSON)."""

from __future__ import annotations

import html
import os
import tempfile
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

from deepsynth.data.documents import DocumentDataset
from materializers.files import local_dir, upload_dir


class DocumentDatasetMaterializer(BaseMaterializer):
    """Stores the document table as Parquet and provenance/rejects as JSON."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (DocumentDataset,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def load(self, data_type: type[Any]) -> DocumentDataset:
        return DocumentDataset.load(local_dir(self.uri))

    def save(self, data: DocumentDataset) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            data.save(tmp)
            upload_dir(tmp, self.uri)

    def extract_metadata(self, data: DocumentDataset) -> dict[str, Any]:
        return data.metadata()

    def save_visualizations(self, data: DocumentDataset) -> dict[str, VisualizationType]:
        rows = "".join(
            f"<tr><td>{html.escape(r['id'])}</td><td>{r['split']}</td><td>{len(r['text'])}</td>"
            f"<td>{html.escape(r['summary'][:160])}</td></tr>"
            for _, r in zip(range(20), data.rows())
        )
        rejects = "".join(f"<li>{html.escape(r['reason'])}</li>" for r in data.rejects[:50])
        meta = data.metadata()
        page = (
            f"<h3>{html.escape(meta['source'])} — {meta['rows']} documents</h3>"
            f"<p>per split: {meta['rows_per_split']}; rejected: {meta['rejected']}; content hash "
            f"{meta['content_hash'][:16]}</p>"
            "<table border=1 cellpadding=4><tr><th>id</th><th>split</th><th>chars</th><th>summary</th></tr>"
            f"{rows}</table>" + (f"<h4>Rejected rows</h4><ul>{rejects}</ul>" if rejects else "")
        )
        path = os.path.join(self.uri, "preview.html")
        with fileio.open(path, "w") as handle:
            handle.write(page)
        return {path: VisualizationType.HTML}
