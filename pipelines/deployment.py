"""Turn a run config's ``deployment``, ``schedule`` and ``tracking`` sections into ZenML run options.

* Every step runs on ``deployment.cpu_image`` (``DockerSettings`` at pipeline level).
* With ``gpu_count > 0`` the GPU steps (train/evaluate) run on ``gpu_image`` with
  ``ResourceSettings(gpu_count=…)``, optionally on a GPU step operator and with Kubernetes node
  selectors; everything else stays on the CPU image.
* ``schedule.cron`` becomes a ZenML ``Schedule``; only schedulable orchestrators accept one.
* ``tracking`` is checked against the active stack's experiment tracker.

These settings only matter to container-based orchestrators (local_docker, kubernetes, …); the
embedded local orchestrator runs steps in-process and ignores them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepsynth.errors import ConfigError
from pipelines.config import RunConfig
from pipelines.env_vars import expand

#: Orchestrator flavors without schedules: cron on the machine instead (deepsynth schedule install).
UNSCHEDULABLE = {"local", "local_docker"}
#: The flavors whose pods take node selectors through their ``pod_settings``.
KUBERNETES = "kubernetes"


def _requirements() -> list[str]:
    """ZenML 0.98 does not infer requirements: name the project's, core and pipelines (used only when ZenML builds)."""
    import tomllib

    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    if not pyproject.exists():
        return []
    project = tomllib.loads(pyproject.read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["pipelines"]]


def docker_settings(image: str, skip_build: bool) -> Any:
    """``DockerSettings`` that run a step on ``image`` (prebuilt when ``skip_build``)."""
    from zenml.config import DockerSettings

    image = expand(image, "deployment image")
    if skip_build:
        return DockerSettings(parent_image=image, skip_build=True)
    return DockerSettings(parent_image=image, requirements=_requirements(), install_stack_requirements=True)


def step_options(
    config: RunConfig, steps: list[str] | None = None, orchestrator_flavor: str | None = None
) -> dict[str, dict[str, Any]]:
    """Per-step configuration: the GPU steps' image, resources, step operator and node selector."""
    from zenml.config import ResourceSettings

    deploy = config.deployment
    if deploy.gpu_count <= 0:
        return {}  # the CPU config: every step keeps the pipeline-level CPU image
    options: dict[str, dict[str, Any]] = {}
    for name in deploy.gpu_steps:
        if steps is not None and name not in steps:
            continue  # a step this pipeline does not have (e.g. evaluate in the data pipeline)
        settings: dict[str, Any] = {
            "docker": docker_settings(deploy.gpu_image or deploy.cpu_image, deploy.skip_build),
            "resources": ResourceSettings(gpu_count=deploy.gpu_count, memory=deploy.gpu_memory),
        }
        if deploy.gpu_node_selector and orchestrator_flavor == KUBERNETES and not deploy.step_operator:
            settings["orchestrator.kubernetes"] = {"pod_settings": {"node_selectors": dict(deploy.gpu_node_selector)}}
        entry: dict[str, Any] = {"settings": settings}
        if deploy.step_operator:
            entry["step_operator"] = deploy.step_operator
        options[name] = entry
    return options


def schedule(config: RunConfig, orchestrator_flavor: str | None) -> Any | None:
    """The ZenML ``Schedule`` for ``schedule.cron``; refused on orchestrators that cannot schedule."""
    if not config.schedule.cron:
        return None
    if orchestrator_flavor in UNSCHEDULABLE:
        raise ConfigError(
            f"schedule.cron: the active stack's orchestrator ({orchestrator_flavor}) has no schedules; "
            f"register a schedulable stack (deepsynth stack register configs/stacks/k8s-gpu-s3.yaml) or let cron "
            f"start runs: deepsynth schedule install --cron {config.schedule.cron!r}"
        )
    from zenml.config.schedule import Schedule

    return Schedule(name=config.schedule.name, cron_expression=config.schedule.cron, catchup=config.schedule.catchup)


def check_tracking(config: RunConfig, tracker: Any | None) -> None:
    """Refuse the active stack's tracking store if the config's ``tracking`` section forbids it."""
    uri = None
    if tracker is not None:
        uri = getattr(tracker.config, "tracking_uri", None)
    try:
        config.tracking.check(uri)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def pipeline_options(config: RunConfig, steps: list[str] | None = None) -> dict[str, Any]:
    """Options for ``pipeline.with_options(...)``: pipeline-level CPU image, per-step GPU settings, schedule.

    Also checks the ``tracking`` section against the active stack (raises :class:`ConfigError`).
    """
    from zenml.client import Client

    import steps as _project_steps  # noqa: F401  (sets the project root as ZenML's source root)

    stack = Client().active_stack
    flavor = stack.orchestrator.flavor
    check_tracking(config, stack.experiment_tracker)
    if config.deployment.step_operator and config.deployment.gpu_count > 0 and stack.step_operator is None:
        raise ConfigError(
            f"deployment.step_operator: {config.deployment.step_operator!r} is set but the active stack "
            f"({stack.name}) has no step operator"
        )
    options: dict[str, Any] = {
        "settings": {"docker": docker_settings(config.deployment.cpu_image, config.deployment.skip_build)},
    }
    per_step = step_options(config, steps, flavor)
    if per_step:
        options["steps"] = per_step
    scheduled = schedule(config, flavor)
    if scheduled is not None:
        options["schedule"] = scheduled
    return options
