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

A process that imported ZenML, MLflow and their dependencies spends 4-8 s after its last line in
the interpreter's final garbage collection and module teardown (C level, no Python frame; measured
on 2 shared cores). :func:`skip_final_collection` freezes the heap at exit (``gc.freeze``): exit
handlers (logging, ZenML's log store, MLflow) still run first and objects still release their
resources by reference counting; only the last collection of cyclic garbage is skipped.

Stored artifacts still load: an artifact records its materializer's source, which ZenML imports when
the artifact is read. Step entrypoints inside containers are not patched (they activate everything).
"""

from __future__ import annotations

import atexit
import functools
import gc
import sys
from pathlib import Path
from typing import Any

_ORIGINAL = "_deepsynth_original_activate"
_FREEZE_REGISTERED = False


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


def skip_final_collection() -> None:
    """At interpreter exit, after the other exit handlers, freeze the heap so no final collection scans it."""
    global _FREEZE_REGISTERED
    if not _FREEZE_REGISTERED:
        # atexit runs handlers last-in first-out: registered now, it runs before the handlers registered
        # earlier, and freezing does not stop those; it only keeps the collector off what is left.
        atexit.register(gc.freeze)
        _FREEZE_REGISTERED = True


def speed_up_runs(stack: Any) -> None:
    """Apply the work-arounds before a pipeline on ``stack`` (the active stack's response model) compiles."""
    limit_integration_activation(stack_integrations(stack))
    record_packages_from_metadata()
    skip_final_collection()


def restore_integration_activation() -> None:
    """Undo :func:`limit_integration_activation` (ZenML activates every installed integration again)."""
    from zenml.integrations.registry import IntegrationRegistry

    original = getattr(IntegrationRegistry, _ORIGINAL, None)
    if original is not None:
        IntegrationRegistry.activate_integrations = original  # type: ignore[method-assign]
        delattr(IntegrationRegistry, _ORIGINAL)
