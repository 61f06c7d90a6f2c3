"""The ``register`` section of a run configuration."""

from __future__ import annotations

from dataclasses import dataclass

from deepsynth.configuration import Section, knob


@dataclass
class RegisterConfig(Section):
    """Where the exported model is registered and when it becomes the champion."""

    _section = "register"

    model_name: str = knob(
        "deepsynth-summarizer", "registered model name in MLflow (and the ZenML Model Control Plane)"
    )
    gate_metric: str = knob(
        "rouge_l", "evaluation metric of the adapter the promotion gate compares (higher is better)"
    )
    margin: float = knob(0.0, "a new version must beat the champion's gate metric by more than this")
    promote: bool = knob(True, "run the promotion gate after registering (the new version is always 'challenger')")
    require_promotion: bool = knob(False, "fail the run (exit code 4) when the new version does not become champion")

    def __post_init__(self) -> None:
        from deepsynth.registry.versions import model_name_problem

        problem = model_name_problem(self.model_name) if isinstance(self.model_name, str) else None
        if problem:
            raise ValueError(f"register.model_name: {problem}")
