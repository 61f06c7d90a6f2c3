"""Embedded defaults: a project-local ZenML store and a stack with MLflow on SQLite.

Nothing has to be started by hand: :func:`prepare_environment` points ZenML at
``<home>/zenml`` (``home`` = ``$DEEPSYNTH_HOME`` or ``./.deepsynth``) and turns analytics off;
:func:`ensure_stack` registers and activates the ``deepsynth-local`` stack on first use: the
local orchestrator and artifact store plus an MLflow experiment tracker and model registry
without a tracking URI, so ZenML keeps MLflow's SQLite database inside its local store.
"""

from __future__ import annotations

import os
from pathlib import Path

from deepsynth.paths import deepsynth_home

STACK = "deepsynth-local"
TRACKER = "deepsynth-mlflow"
REGISTRY = "deepsynth-registry"

QUIET_DEFAULTS = {
    "ZENML_ANALYTICS_OPT_IN": "false",
    "ZENML_DISABLE_INTERACTIVE_INPUT": "true",
    "ZENML_LOGGING_VERBOSITY": "WARN",
    "ZENML_ENABLE_RICH_TRACEBACK": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def prepare_environment() -> Path:
    """Set ZenML/MLflow environment defaults (before ZenML is imported); return the home folder."""
    home = deepsynth_home()
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ZENML_CONFIG_PATH", str(home / "zenml"))
    for key, value in QUIET_DEFAULTS.items():
        os.environ.setdefault(key, value)
    return home


def ensure_stack(name: str | None = None) -> str:
    """Register (once) and activate the project's local stack; return its name.

    With ``name`` (a config's ``deployment.stack``), activate that registered stack instead.
    """
    prepare_environment()
    from zenml.client import Client
    from zenml.enums import StackComponentType

    client = Client()
    if name and name != STACK:
        from deepsynth.errors import ConfigError

        if name not in {s.name for s in client.list_stacks(name=name).items}:
            raise ConfigError(f"deployment.stack: no stack {name!r} (register one: deepsynth stack register configs/stacks/…)")
        if client.active_stack_model.name != name:
            client.activate_stack(name)
        return name
    existing = {c.name for c in client.list_stack_components(size=100).items}
    if TRACKER not in existing:
        client.create_stack_component(TRACKER, "mlflow", StackComponentType.EXPERIMENT_TRACKER, configuration={})
    if REGISTRY not in existing:
        client.create_stack_component(REGISTRY, "mlflow", StackComponentType.MODEL_REGISTRY, configuration={})
    if STACK not in {s.name for s in client.list_stacks(size=100).items}:
        client.create_stack(
            STACK,
            components={
                StackComponentType.ORCHESTRATOR: "default",
                StackComponentType.ARTIFACT_STORE: "default",
                StackComponentType.EXPERIMENT_TRACKER: TRACKER,
                StackComponentType.MODEL_REGISTRY: REGISTRY,
            },
        )
    if client.active_stack_model.name != STACK:
        client.activate_stack(STACK)
    return STACK


def use_stack_tracking() -> str:
    """Point MLflow (tracking and registry) at the active stack's experiment tracker; return the URI.

    For code that runs outside a step (the CLI's ``models`` and ``summarize`` commands); inside
    steps the experiment tracker sets this up itself.
    """
    prepare_environment()
    import mlflow
    from zenml.client import Client

    if Client().active_stack.experiment_tracker is None:  # a fresh store: set up the embedded stack
        ensure_stack()
    tracker = Client().active_stack.experiment_tracker
    if tracker is None:
        from deepsynth.errors import ConfigError

        raise ConfigError("the active ZenML stack has no experiment tracker: register an MLflow one")
    if hasattr(tracker, "configure_mlflow"):  # a remote server's credentials (from ZenML secrets), as steps get them
        tracker.configure_mlflow()
    uri = tracker.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri
