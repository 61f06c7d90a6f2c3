"""Embedded defaults: a project-local ZenML store and a stack with MLflow on SQLite.

Nothing has to be started by hand: :func:`prepare_environment` points ZenML at
``<home>/zenml`` (``home``: see :func:`deepsynth.paths.find_home`) and turns analytics off;
:func:`ensure_stack` registers and activates the ``deepsynth-local`` stack on first use: the
local orchestrator and artifact store plus an MLflow experiment tracker and model registry
without a tracking URI, so ZenML keeps MLflow's SQLite database inside its local store. The
stores are set up once and checked on every use (:mod:`pipelines.stores`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepsynth.env import HUB_OFFLINE, QUIET_DEFAULTS, hub_offline, set_defaults
from deepsynth.paths import deepsynth_home
from pipelines.mlflow_schema import create_database
from pipelines.stores import active_stack_id, ensure_ready, require_ready, sqlite_path
from pipelines.zenml_speedups import skip_migrations_at_installed_release

STACK = "deepsynth-local"
TRACKER = "deepsynth-mlflow"
REGISTRY = "deepsynth-registry"


def prepare_environment() -> Path:
    """Set ZenML/MLflow environment defaults (before ZenML is imported); return the home folder.

    ``HF_HUB_OFFLINE`` defaults to 1 unless :func:`prepare_run_environment` chose otherwise first.
    """
    home = deepsynth_home()
    home.mkdir(parents=True, exist_ok=True)
    set_defaults({"ZENML_CONFIG_PATH": str(home / "zenml"), **QUIET_DEFAULTS})
    return home


def prepare_run_environment(model_name: str | None, stack: str | None) -> Path:
    """:func:`prepare_environment` for a run of ``model_name`` on ``stack`` (a config's ``deployment.stack``).

    A hub model (``owner/name``, not a local path) on another stack than the local one leaves the hub
    reachable (``HF_HUB_OFFLINE`` defaults to 0: the stack's machines download the weights); every
    other run reads models from disk (1). An exported ``HF_HUB_OFFLINE`` always wins.
    """
    set_defaults({HUB_OFFLINE: hub_offline(model_name, local_stack=stack in (None, STACK))})
    return prepare_environment()


def _set_up_local_stack() -> dict[str, Any]:
    """Register the ``deepsynth-local`` stack and create its MLflow database; the set-up record's entries."""
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration
    from zenml.enums import StackComponentType

    client = Client()
    GlobalConfiguration().analytics_opt_in = False  # stored, not only the environment's default
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
    uri = client.active_stack.experiment_tracker.get_tracking_uri()
    _create_mlflow_tables(uri)
    database = client.zen_store.config.url
    return {
        "zenml_db": str(sqlite_path(database)) if sqlite_path(database) else None,
        "stack_id": str(client.active_stack_model.id),
        "tracking_uri": uri,
        "mlflow_db": str(sqlite_path(uri)) if sqlite_path(uri) else None,
    }


def _create_mlflow_tables(uri: str) -> None:
    """Create MLflow's tables now, inside the set-up, with the Default experiment's artifacts in the home.

    MLflow gives a new database's Default experiment ``./mlruns`` of the creating process's working
    directory; what runs in it (a Studio merge's registration, a script's ``mlflow.start_run()``) would
    write there, outside the home, where a copied or moved home does not follow. The pipelines' own
    experiments get the home's ``mlflow_artifacts`` from ZenML's tracker; Default gets the same folder.
    """
    from mlflow import MlflowClient

    database = sqlite_path(uri)
    if database is None:  # a server: its own artifact root
        MlflowClient(uri).search_experiments(max_results=1)
        return
    create_database(database, database.parent / "mlflow_artifacts")


def ensure_stack(name: str | None = None) -> str:
    """Set up (once) and check this home's stores, then activate the project's local stack; return its name.

    With ``name`` (a config's ``deployment.stack``), activate that registered stack instead.

    Raises:
        StoreError: A store of this home is missing or damaged (see :mod:`pipelines.stores`).
    """
    prepare_environment()
    skip_migrations_at_installed_release()
    ensure_ready(_set_up_local_stack)
    from zenml.client import Client

    client = Client()
    if name and name != STACK:
        from deepsynth.errors import ConfigError

        if name not in {s.name for s in client.list_stacks(name=name).items}:
            raise ConfigError(
                f"deployment.stack: no stack {name!r} (register one: deepsynth stack register configs/stacks/…)"
            )
        if client.active_stack_model.name != name:
            client.activate_stack(name)
        return name
    if client.active_stack_model.name != STACK:
        client.activate_stack(STACK)
    return STACK


def recorded_tracking_uri() -> str | None:
    """The local stack's tracking URI from the set-up record while it is the active stack (ZenML not imported).

    Raises:
        StoreError: Nothing has run with this home yet, or one of its stores is damaged.
    """
    prepare_environment()
    record = require_ready()
    if record and record.get("tracking_uri") and active_stack_id() == record.get("stack_id"):
        return record["tracking_uri"]
    return None


def use_stack_tracking(uri: str | None = None) -> str:
    """Point MLflow (tracking and registry) at the active stack's experiment tracker; return the URI.

    For code that runs outside a step (the CLI's ``models`` and ``summarize`` commands); inside
    steps the experiment tracker sets this up itself.

    Args:
        uri: :func:`recorded_tracking_uri`, when the caller already has it; else it is looked up
            (through ZenML when the active stack is not the local one).
    """
    import mlflow

    uri = uri or recorded_tracking_uri() or _active_tracker_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def _active_tracker_uri() -> str:
    """The active ZenML stack's MLflow tracking URI, with a remote server's credentials configured."""
    from zenml.client import Client

    tracker = Client().active_stack.experiment_tracker
    if tracker is None:
        from deepsynth.errors import ConfigError

        raise ConfigError("the active ZenML stack has no experiment tracker: register an MLflow one")
    if hasattr(tracker, "configure_mlflow"):  # a remote server's credentials (from ZenML secrets), as steps get them
        tracker.configure_mlflow()
    return tracker.get_tracking_uri()
