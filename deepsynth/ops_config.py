"""Config sections for where and when a run executes: images and resources, schedule, tracking.

Plain dataclasses (no ZenML here): :mod:`pipelines.deployment` turns them into ZenML
``DockerSettings``/``ResourceSettings`` per step and a cron ``Schedule``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from deepsynth.configuration import knob

#: Steps that need an accelerator when one is configured (present or future pipeline steps).
GPU_STEPS = ["train_lora", "evaluate_adapter"]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str, where: str) -> str:
    """Replace ``${VAR}`` with the environment's value; a missing variable is an error naming it."""

    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"{where}: environment variable {name} is not set")
        return os.environ[name]

    return _ENV.sub(sub, value)


def is_local_tracking_uri(uri: str | None) -> bool:
    """True for stores that live on one machine: None (embedded), ``sqlite:``, ``file:`` or a path."""
    if not uri:
        return True
    scheme = uri.split(":", 1)[0].lower() if "://" in uri or uri.startswith(("sqlite:", "file:")) else ""
    return scheme in ("", "sqlite", "file")


@dataclass
class DeploymentConfig:
    """Which stack, images and resources each step gets (used by container-based orchestrators)."""

    stack: str | None = knob(None, "ZenML stack to run on (see `deepsynth stack register`); null = the embedded local stack")
    cpu_image: str = knob("deepsynth/cpu:0.1.0", "Image for every CPU step (docker/Dockerfile.cpu)")
    gpu_image: str | None = knob(None, "Image for the GPU steps (docker/Dockerfile.gpu); null = cpu_image")
    gpu_steps: list[str] = knob(list(GPU_STEPS), "Steps that run on gpu_image with gpu_count GPUs")
    gpu_count: int = knob(0, "GPUs per GPU step (ResourceSettings.gpu_count); 0 = no accelerator requested")
    gpu_memory: str | None = knob(None, "Memory per GPU step, e.g. 32GB (ResourceSettings.memory); null = orchestrator default")
    gpu_node_selector: dict[str, str] = knob({}, "Kubernetes node labels for GPU steps' pods, e.g. {nvidia.com/gpu.present: 'true'}")
    step_operator: str | None = knob(None, "Stack step operator that runs the GPU steps (e.g. deepsynth-gpu); null = the orchestrator")
    skip_build: bool = knob(True, "Run on the prebuilt images as they are; false = ZenML builds its image on top of them")

    def __post_init__(self) -> None:
        if self.gpu_count < 0:
            raise ValueError(f"deployment.gpu_count: must be >= 0, got {self.gpu_count}")
        if self.gpu_count and not self.gpu_image:
            raise ValueError("deployment.gpu_image: required when gpu_count > 0 (the CPU image has no CUDA)")
        for name, value in (("cpu_image", self.cpu_image), ("gpu_image", self.gpu_image)):
            if value is not None and (not value or any(c.isspace() for c in value)):
                raise ValueError(f"deployment.{name}: {value!r} is not an image reference")


@dataclass
class ScheduleConfig:
    """A recurring run on a schedulable orchestrator (kubernetes, kubeflow, airflow, vertex, …)."""

    cron: str | None = knob(None, "Cron expression (5 fields, UTC) for the orchestrator's schedule; null = run once now")
    name: str | None = knob(None, "Schedule name shown by the orchestrator; null = derived from the pipeline")
    catchup: bool = knob(False, "Run the intervals missed while the schedule was paused")

    def __post_init__(self) -> None:
        if self.cron is not None:
            from deepsynth.scheduling import parse_cron

            parse_cron(self.cron, where="schedule.cron")


@dataclass
class TrackingConfig:
    """Which MLflow tracking store a run may log to."""

    server: str | None = knob(None, "Tracking server the stack's tracker must point at (http(s)://…, ${VAR} allowed); null = any")
    allow_local_store: bool = knob(True, "Accept a file/SQLite tracking store; false for scheduled and CI runs that need a shared server")

    def __post_init__(self) -> None:
        if self.server is not None and "${" not in self.server and is_local_tracking_uri(self.server):
            raise ValueError(
                f"tracking.server: {self.server!r} is a local file/SQLite store; name an MLflow tracking server "
                "(http(s)://…, backed by PostgreSQL: see configs/stacks/mlflow-server.yaml)"
            )

    def check(self, tracker_uri: str | None) -> None:
        """Refuse ``tracker_uri`` (the active stack's) if this section forbids it (raises ValueError)."""
        if self.server is not None:
            wanted = expand_env(self.server, "tracking.server").rstrip("/")
            if is_local_tracking_uri(wanted):
                raise ValueError(f"tracking.server: {wanted!r} is a local file/SQLite store; name an MLflow tracking server")
            if (tracker_uri or "").rstrip("/") != wanted:
                raise ValueError(
                    f"tracking.server: the active stack's experiment tracker logs to {tracker_uri or 'its embedded SQLite store'}, "
                    f"not {wanted}; register a stack whose tracker points there (deepsynth stack register …)"
                )
        if not self.allow_local_store and is_local_tracking_uri(tracker_uri):
            raise ValueError(
                "tracking.allow_local_store is false but the active stack's experiment tracker uses a local "
                f"file/SQLite store ({tracker_uri or 'embedded'}); scheduled and CI runs need an MLflow tracking server"
            )
