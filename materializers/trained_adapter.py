"""Materializer for :class:`deepsynth.adapters.TrainedAdapter` (the adapter folder, copied as is)."""

from __future__ import annotations

import io
import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

from deepsynth.adapters import TrainedAdapter
from deepsynth.training.adapter_set import TrainedAdapterSet
from materializers.files import local_dir, upload_dir


def loss_curve_png(adapter: TrainedAdapter) -> bytes | None:
    """The training loss curve as a PNG, or None when no curve was recorded."""
    curve = adapter.metrics.get("loss_curve") or []
    if not curve:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses = [p[0] for p in curve], [p[1] for p in curve]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot(steps, losses, marker="o", markersize=2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss")
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


class TrainedAdapterMaterializer(BaseMaterializer):
    """Stores the adapter folder (safetensors + JSON + tokenizer); visualized as its loss curve."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (TrainedAdapter,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> TrainedAdapter:
        return TrainedAdapter(local_dir(self.uri))

    def save(self, data: TrainedAdapter) -> None:
        upload_dir(data.path, self.uri)

    def extract_metadata(self, data: TrainedAdapter) -> dict[str, Any]:
        return data.summary()

    def save_visualizations(self, data: TrainedAdapter) -> dict[str, VisualizationType]:
        png = loss_curve_png(data)
        if png is None:
            return {}
        path = os.path.join(self.uri, "loss_curve.png")
        with fileio.open(path, "wb") as handle:
            handle.write(png)
        return {path: VisualizationType.IMAGE}


class TrainedAdapterSetMaterializer(BaseMaterializer):
    """Stores a multi-adapter run's folder (``adapters.json`` + one adapter folder per variant)."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (TrainedAdapterSet,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> TrainedAdapterSet:
        return TrainedAdapterSet(local_dir(self.uri))

    def save(self, data: TrainedAdapterSet) -> None:
        upload_dir(data.path, self.uri)

    def extract_metadata(self, data: TrainedAdapterSet) -> dict[str, Any]:
        return data.summary()
