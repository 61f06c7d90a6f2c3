"""Step: read the configured source into a document dataset."""

from __future__ import annotations

from typing import Annotated

from zenml import step

from deepsynth.data import ingest as ingestion
from deepsynth.data.config import IngestConfig
from deepsynth.data.documents import DocumentDataset


@step
def ingest(config: IngestConfig, source_revision: str) -> Annotated[DocumentDataset, "documents"]:
    """Read documents.

    Args:
        config: The ``ingest`` section.
        source_revision: The source's content identity (file sha256, package version, hub
            commit), computed before the run: it is part of the cache key, so changed data is
            never served from the cache.
    """
    documents = ingestion.ingest(config)
    if documents.revision != source_revision:
        raise RuntimeError(
            f"{documents.source}: the source changed while the run started "
            f"({source_revision} → {documents.revision}); run again"
        )
    return documents
