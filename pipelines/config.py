"""The run configuration: :class:`RunConfig` and its sections for where and when a run executes.

The step sections (ingest, render, validate, train, evaluate, export, register) are the domain
library's config classes; the deployment, schedule and tracking sections are plain dataclasses
here (no ZenML): :mod:`pipelines.deployment` turns them into ZenML ``DockerSettings``/
``ResourceSettings`` per step and a cron ``Schedule``. Loading from YAML:
:func:`pipelines.config_loading.load_run_config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deepsynth.configuration import Section, knob
from deepsynth.data.config import IngestConfig
from deepsynth.evaluation.config import EvaluateConfig
from deepsynth.export.config import ExportSettings
from deepsynth.registry.config import RegisterConfig
from deepsynth.rendering.config import RenderSettings
from deepsynth.training.config import TrainerConfig
from deepsynth.validation.config import ValidationConfig
from pipelines.env_vars import expand, refuse_references
from pipelines.scheduling import parse_cron

#: Steps that need an accelerator when one is configured (present or future pipeline steps).
GPU_STEPS = ["train_lora", "evaluate_adapter"]
#: The keys documented as taking ``${VAR}`` references (expanded when used); anywhere else one is refused.
ENV_REFERENCE_KEYS = ("deployment.cpu_image", "deployment.gpu_image", "tracking.server")


def is_local_tracking_uri(uri: str | None) -> bool:
    """True for stores that live on one machine: None (embedded), ``sqlite:``, ``file:`` or a path."""
    if not uri:
        return True
    scheme = uri.split(":", 1)[0].lower() if "://" in uri or uri.startswith(("sqlite:", "file:")) else ""
    return scheme in ("", "sqlite", "file")


@dataclass
class DeploymentConfig(Section):
    """Which stack, images and resources each step gets (used by container-based orchestrators)."""

    _section = "deployment"

    stack: str | None = knob(
        None, "ZenML stack to run on (see `deepsynth stack register`); null = the embedded local stack"
    )
    cpu_image: str = knob("deepsynth/cpu:0.1.0", "Image for every CPU step (docker/Dockerfile.cpu; ${VAR} allowed)")
    gpu_image: str | None = knob(
        None, "Image for the GPU steps (docker/Dockerfile.gpu; ${VAR} allowed); null = cpu_image"
    )
    gpu_steps: list[str] = knob(list(GPU_STEPS), "Steps that run on gpu_image with gpu_count GPUs")
    gpu_count: int = knob(0, "GPUs per GPU step (ResourceSettings.gpu_count); 0 = no accelerator requested")
    gpu_memory: str | None = knob(
        None, "Memory per GPU step, e.g. 32GB (ResourceSettings.memory); null = orchestrator default"
    )
    gpu_node_selector: dict[str, str] = knob(
        {}, "Kubernetes node labels for GPU steps' pods, e.g. {nvidia.com/gpu.present: 'true'}"
    )
    step_operator: str | None = knob(
        None, "Stack step operator that runs the GPU steps (e.g. deepsynth-gpu); null = the orchestrator"
    )
    skip_build: bool = knob(
        True, "Run on the prebuilt images as they are; false = ZenML builds its image on top of them"
    )
    nodes: int = knob(
        1, "Machines the training spans; >1: a Kubeflow PyTorchJob of that many pods (python -m pipelines.pytorchjob)"
    )
    shared_volume: str | None = knob(
        None, "ReadWriteMany PersistentVolumeClaim mounted at /shared in every training pod; required when nodes > 1"
    )

    def __post_init__(self) -> None:
        if self.gpu_count < 0:
            raise ValueError(f"deployment.gpu_count: must be >= 0, got {self.gpu_count}")
        if self.nodes < 1:
            raise ValueError(f"deployment.nodes: must be >= 1, got {self.nodes}")
        if self.nodes > 1 and not self.shared_volume:
            raise ValueError(
                "deployment.shared_volume: required when nodes > 1 (the pods share the dataset, checkpoints "
                "and adapter through it)"
            )
        if self.gpu_count and not self.gpu_image:
            raise ValueError("deployment.gpu_image: required when gpu_count > 0 (the CPU image has no CUDA)")
        for name, value in (("cpu_image", self.cpu_image), ("gpu_image", self.gpu_image)):
            if value is not None and (not value or any(c.isspace() for c in value)):
                raise ValueError(f"deployment.{name}: {value!r} is not an image reference")


@dataclass
class ScheduleConfig(Section):
    """A recurring run on a schedulable orchestrator (kubernetes, kubeflow, airflow, vertex, …)."""

    _section = "schedule"

    cron: str | None = knob(
        None, "Cron expression (5 fields, UTC) for the orchestrator's schedule; null = run once now"
    )
    name: str | None = knob(None, "Schedule name shown by the orchestrator; null = derived from the pipeline")
    catchup: bool = knob(False, "Run the intervals missed while the schedule was paused")

    def __post_init__(self) -> None:
        if self.cron is not None:
            parse_cron(self.cron, where="schedule.cron")


@dataclass
class TrackingConfig(Section):
    """Which MLflow tracking store a run may log to."""

    _section = "tracking"

    server: str | None = knob(
        None, "Tracking server the stack's tracker must point at (http(s)://…, ${VAR} allowed); null = any"
    )
    allow_local_store: bool = knob(
        True, "Accept a file/SQLite tracking store; false for scheduled and CI runs that need a shared server"
    )

    def __post_init__(self) -> None:
        if self.server is not None and "${" not in self.server and is_local_tracking_uri(self.server):
            raise ValueError(
                f"tracking.server: {self.server!r} is a local file/SQLite store; name an MLflow tracking server "
                "(http(s)://…, backed by PostgreSQL: see configs/stacks/mlflow-server.yaml)"
            )

    def check(self, tracker_uri: str | None) -> None:
        """Refuse ``tracker_uri`` (the active stack's) if this section forbids it (raises ValueError)."""
        if self.server is not None:
            wanted = expand(self.server, "tracking.server").rstrip("/")
            if is_local_tracking_uri(wanted):
                raise ValueError(
                    f"tracking.server: {wanted!r} is a local file/SQLite store; name an MLflow tracking server"
                )
            if (tracker_uri or "").rstrip("/") != wanted:
                raise ValueError(
                    "tracking.server: the active stack's experiment tracker logs to "
                    f"{tracker_uri or 'its embedded SQLite store'}, "
                    f"not {wanted}; register a stack whose tracker points there (deepsynth stack register …)"
                )
        if not self.allow_local_store and is_local_tracking_uri(tracker_uri):
            raise ValueError(
                "tracking.allow_local_store is false but the active stack's experiment tracker uses a local "
                f"file/SQLite store ({tracker_uri or 'embedded'}); scheduled and CI runs need an MLflow tracking server"
            )


@dataclass
class RunConfig(Section):
    """Everything one pipeline run needs; each section maps to one step's parameters."""

    _section = "run"

    pipeline: Literal["data", "training"] = knob(
        "training", "data = ingest → render → validate; training = data + train → evaluate → export and register"
    )
    run_name: str | None = knob(None, "ZenML run name template; null = pipeline name + timestamp")
    enable_cache: bool = knob(True, "Reuse step outputs whose code, parameters and inputs are unchanged")
    ingest: IngestConfig = knob(default_factory=IngestConfig, help="Where documents come from")
    render: RenderSettings = knob(default_factory=RenderSettings, help="How documents become page images")
    validate: ValidationConfig = knob(default_factory=ValidationConfig, help="Data checks and quarantine rules")
    train: TrainerConfig = knob(default_factory=TrainerConfig, help="LoRA/QLoRA fine-tuning (training pipeline)")
    evaluate: EvaluateConfig = knob(default_factory=EvaluateConfig, help="Held-out scoring against the baselines")
    export: ExportSettings = knob(default_factory=ExportSettings, help="The export package")
    register: RegisterConfig = knob(default_factory=RegisterConfig, help="Model registry name and promotion gate")
    deployment: DeploymentConfig = knob(default_factory=DeploymentConfig, help="Stack, images and resources per step")
    schedule: ScheduleConfig = knob(default_factory=ScheduleConfig, help="Cron schedule on a schedulable orchestrator")
    tracking: TrackingConfig = knob(default_factory=TrackingConfig, help="Which MLflow tracking store the run may use")

    def __post_init__(self) -> None:
        refuse_references(self, ENV_REFERENCE_KEYS)
