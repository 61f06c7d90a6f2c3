"""The evaluation result: every system's metrics and per-document rows (no model code, cheap to import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ADAPTER, BASE = "adapter", "base"
#: Systems of a multi-adapter evaluation are ``adapter/<variant name>`` (ZenML metadata keys may not hold a colon).
VARIANT_PREFIX = "adapter/"


@dataclass
class EvaluationResult:
    """Metrics of every system on one split.

    Attributes:
        systems: ``{system: {metric: value}}`` for ``adapter``, ``base`` and ``lead_<k>``.
        rows: Per document and system: id, system, prediction, reference and the metric row.
        config: How the evaluation ran (generation settings, k, number of documents).
    """

    systems: dict[str, dict[str, float]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def adapter_metrics(self) -> dict[str, float]:
        """The adapter's metrics."""
        return self.systems[ADAPTER]

    @property
    def variants(self) -> list[str]:
        """Names of the adapters of a multi-adapter evaluation (``[]`` for one adapter)."""
        return [s[len(VARIANT_PREFIX) :] for s in self.systems if s.startswith(VARIANT_PREFIX)]

    def variant_metrics(self, name: str) -> dict[str, float]:
        """The metrics of variant ``name`` of a multi-adapter evaluation."""
        return self.systems[VARIANT_PREFIX + name]

    def rows_for(self, system: str) -> list[dict[str, Any]]:
        """Per-document rows of one system, in document order."""
        return [r for r in self.rows if r["system"] == system]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (round-trips through :meth:`from_dict`)."""
        return {"systems": self.systems, "rows": self.rows, "config": self.config}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationResult:
        """Inverse of :meth:`to_dict`."""
        return cls(dict(data["systems"]), list(data.get("rows", [])), dict(data.get("config", {})))
