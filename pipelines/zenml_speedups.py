"""Only the ZenML integrations the active stack uses are activated when a pipeline compiles.

ZenML 0.98's ``Pipeline._compile`` (``zenml/pipelines/pipeline_definition.py``) calls
``integration_registry.activate_integrations()`` (``zenml/integrations/registry.py``), which imports
the materializers and services of *every* installed integration: Hugging Face's alone imports
transformers' model classes (3-8 s), then PyTorch's and scikit-learn's, on every run, even one where
every step is cached. ZenML has no setting to turn this off. The project's step outputs use its own
materializers (the ``materializers`` package) and ZenML's built-in ones, stack component flavors are
looked up without activation and service connectors are registered on demand by ZenML's connector
registry, so activation here is limited to the integrations of the active stack's components
(``mlflow`` on the local stack; ``kubernetes``, ``s3``, ``gcp`` ... on the remote ones). Upstream: the
eager call in ``_compile`` came with zenml-io/zenml PR #1293 ("needed so that all the materializers
from integrations get registered", review thread on ``_compile``); PR #420 notes activation was kept
out of other paths to keep the CLI quick. No upstream issue or setting to limit it was found.

The package list ZenML records with every run (``Environment.get_python_packages`` in
``zenml/environment.py``, shown in the dashboard) runs ``uv pip freeze``, then ``python -m uv``, then
``pip freeze`` in subprocesses, twice per run (about 0.9 s each here); :func:`record_packages_from_metadata`
builds the same ``name==version`` list from the ``*.dist-info`` folder names, once per process.

ZenML's warning controller (``zenml/utils/warnings/controller.py``) names the caller of each warning
with ``inspect.stack()``, which reads the source lines of every frame on the stack: 0.3-0.7 s here for
the one warning a local run gets (ZML002, Docker settings on a stack without containers).
:func:`cheap_warning_origin` finds the same module and line from the frame alone.

Importing ZenML, its SQL store and MLflow leaves about 350,000 objects that the cyclic garbage collector
tracks, and the collector runs ~840 times meanwhile (every 700 net allocations), to find ~2,500 objects of
garbage: 0.8-1.2 s of a 4-5 s import here. :func:`collection_paused` turns the collector off for such a
start-up phase (reference counting still frees everything outside cycles; the few cycles wait for the
next collection).

After every step that uses it, ZenML's MLflow experiment tracker calls ``disable_autologging``
(``zenml/integrations/mlflow/experiment_trackers/mlflow_experiment_tracker.py``), which imports MLflow's
module for eight frameworks to switch their autologging off: ``mlflow.pytorch`` imports torch and
``mlflow.sklearn`` scikit-learn, about 1.9 s in a process that had imported neither (a data run, a training
run whose training is cached), and a warning when one of them fails to import (fastai, here). Autologging
for a framework lives in that module, so it cannot have been turned on if the module was never imported:
:func:`disable_only_imported_autologging` switches it off only where the module is imported. DeepSynth
logs explicitly and never turns autologging on.

Opening a SQL store runs ZenML's database migration (``SqlZenStore._run_migrations``), which loads
alembic's script directory of ~200 migrations to find that there is nothing to do: ~0.12 s of every
command that opens the store. ZenML's own switch, the ``DISABLE_DATABASE_MIGRATION`` variable, would be
inherited by child processes, and a child on a new, empty store would then never create its tables.
:func:`skip_migrations_at_installed_release` skips the migration only for a database whose
``alembic_version`` is the installed ZenML's release (ZenML's last migration of each release is named
after it); any other database, a new one included, is migrated as before.

A run also skips the interpreter's final garbage collection (:mod:`deepsynth.process_exit`, which the
console script applies to every command).

Stored artifacts still load: an artifact records its materializer's source, which ZenML imports when
the artifact is read. Step entrypoints inside containers are not patched (they activate everything).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepsynth.process_exit import skip_final_collection

_ORIGINAL = "_deepsynth_original_activate"
_ONE_SHOT = False
_MIGRATIONS_PATCHED = False
#: The frameworks whose MLflow autologging ZenML's tracker switches off after each step (ZenML 0.98).
AUTOLOG_FRAMEWORKS = ("tensorflow", "xgboost", "lightgbm", "statsmodels", "spark", "sklearn", "fastai", "pytorch")
logger = logging.getLogger(__name__)


def stack_integrations(stack: Any) -> set[str]:
    """The integration names of ``stack``'s components (a ZenML stack response model)."""
    return {c.integration for components in stack.components.values() for c in components if c.integration}


def limit_integration_activation(names: set[str]) -> None:
    """From now on, ``activate_integrations()`` activates only the installed integrations in ``names``.

    Idempotent: a later call replaces the set (say, another stack in the same process).
    """
    from zenml.integrations.registry import IntegrationRegistry

    original = getattr(IntegrationRegistry, _ORIGINAL, None) or IntegrationRegistry.activate_integrations
    wanted = frozenset(names)

    def activate_integrations(self: IntegrationRegistry) -> None:
        self._initialize()
        for name, integration in self._integrations.items():
            if name in wanted and integration.check_installation():
                integration.activate()

    activate_integrations.__doc__ = f"Activate only {sorted(wanted)} (pipelines.zenml_speedups)."
    setattr(IntegrationRegistry, _ORIGINAL, original)
    IntegrationRegistry.activate_integrations = activate_integrations  # type: ignore[method-assign]


def installed_packages() -> list[str]:
    """``name==version`` of every distribution on ``sys.path``, sorted (what ``pip freeze`` lists).

    Read from the ``<name>-<version>.dist-info`` folder names (the wheel standard's layout), not by
    parsing each package's metadata file, which costs a second with this project's 190 packages.
    """
    found: dict[str, str] = {}
    for folder in sys.path:
        for info in Path(folder or ".").glob("*.dist-info"):
            name, _, version = info.name[: -len(".dist-info")].partition("-")
            if version:
                found.setdefault(name.replace("_", "-").lower(), version)
    return [f"{name}=={version}" for name, version in sorted(found.items())]


def record_packages_from_metadata() -> None:
    """Make ZenML's per-run package list come from :func:`installed_packages` (computed once per process)."""
    from zenml.environment import Environment

    if not getattr(Environment, "_deepsynth_packages", False):
        cached = functools.cache(installed_packages)
        Environment.get_python_packages = staticmethod(cached)  # type: ignore[method-assign]
        Environment._deepsynth_packages = True  # type: ignore[attr-defined]


def _warning_origin() -> tuple[str, int]:
    """The module and line of a ZenML warning's caller (public method -> ``_log`` -> this), without source reads."""
    frame = sys._getframe(3)
    return frame.f_globals.get("__name__", "<unknown module>"), frame.f_lineno


def cheap_warning_origin() -> None:
    """Make ZenML's warning controller find a warning's origin without ``inspect.stack()``."""
    from zenml.utils.warnings.controller import WarningController

    WarningController._resolve_call_details = staticmethod(_warning_origin)  # type: ignore[method-assign]


def _disable_imported_autologging(tracker: Any) -> None:
    for framework in AUTOLOG_FRAMEWORKS:
        module = sys.modules.get(f"mlflow.{framework}")
        if module is None:  # never imported in this process: its autologging was never turned on
            continue
        try:
            module.autolog(disable=True)
        except Exception as exc:  # noqa: BLE001  # as ZenML's own loop: a failure here must not fail the step
            logger.warning("could not turn MLflow autologging off for %s: %s", framework, exc)


def disable_only_imported_autologging() -> None:
    """Make the MLflow tracker switch autologging off only for frameworks whose MLflow module is imported."""
    from zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker import MLFlowExperimentTracker

    MLFlowExperimentTracker.disable_autologging = _disable_imported_autologging  # type: ignore[method-assign]


def at_installed_release(engine: Any) -> bool:
    """Whether the ZenML database behind ``engine`` is at the installed ZenML's release (nothing to migrate)."""
    import zenml
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as connection:
            revisions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:  # no alembic_version table: a new database
        return False
    return revisions == [zenml.__version__]


def skip_migrations_at_installed_release() -> None:
    """Make ZenML's SQL store run its migration only when its database is not at the installed release."""
    global _MIGRATIONS_PATCHED
    if _MIGRATIONS_PATCHED:
        return
    from zenml.zen_stores.sql_zen_store import SqlZenStore

    migrate = SqlZenStore._run_migrations

    def _run_migrations(self: SqlZenStore) -> None:
        if not at_installed_release(self.engine):
            migrate(self)

    SqlZenStore._run_migrations = _run_migrations  # type: ignore[method-assign]
    _MIGRATIONS_PATCHED = True


def one_shot_process() -> None:
    """Mark this process as one that exits after its command (the console script, not a test calling ``main``).

    Then the objects alive at the end of a :func:`collection_paused` block (modules, classes, the
    store's engine) are moved out of the collector's sight for good (``gc.freeze``): later collections,
    during the run, scan only what the run allocates. A long-lived process does not freeze: what it
    froze could never be collected.
    """
    global _ONE_SHOT
    _ONE_SHOT = True


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block; the collector's previous state after it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if _ONE_SHOT:
            gc.freeze()
        gc.enable()


def speed_up_runs(stack: Any) -> None:
    """Apply the work-arounds before a pipeline on ``stack`` (the active stack's response model) compiles."""
    integrations = stack_integrations(stack)
    limit_integration_activation(integrations)
    if "mlflow" in integrations:
        disable_only_imported_autologging()
    record_packages_from_metadata()
    cheap_warning_origin()
    skip_final_collection()


def restore_integration_activation() -> None:
    """Undo :func:`limit_integration_activation` (ZenML activates every installed integration again)."""
    from zenml.integrations.registry import IntegrationRegistry

    original = getattr(IntegrationRegistry, _ORIGINAL, None)
    if original is not None:
        IntegrationRegistry.activate_integrations = original  # type: ignore[method-assign]
        delattr(IntegrationRegistry, _ORIGINAL)
