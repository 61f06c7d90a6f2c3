"""Register an export package as a model version: one version per adapter, even when two processes race.

A new version gets the ``challenger`` alias; ``champion`` moves only through :mod:`deepsynth.registry.promotion`.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from deepsynth.integrity import sha256_file
from deepsynth.package import MANIFEST, verify_directory
from deepsynth.registry.fetch import PACKAGE_ARTIFACT
from deepsynth.registry.git_info import git_commit
from deepsynth.registry.promotion import CHALLENGER
from deepsynth.registry.versions import (
    ADAPTER_SHA_TAG,
    MANIFEST_SHA_TAG,
    METRIC_PREFIX,
    check_model_name,
    client,
    search_versions,
    set_alias,
)

#: The installed module MLflow's own loaders import to open a version (it verifies before loading).
LOADER_MODULE = "deepsynth.registry.pyfunc_loader"
DESCRIPTION = "DeepSynth summarizer (DeepSeek-OCR + LoRA) export packages"


def _versions(name: str) -> list[Any]:
    mlflow_client = client()
    # search_model_versions leaves aliases empty: fetch each version for them.
    found = search_versions(mlflow_client, name)
    return sorted((mlflow_client.get_model_version(name, mv.version) for mv in found), key=lambda mv: int(mv.version))


def _find_by_sha(name: str, sha: str) -> Any | None:
    for mv in _versions(name):
        if (mv.tags or {}).get(ADAPTER_SHA_TAG) == sha:
            return mv
    return None


def _already_registered(mlflow_client: Any, mv: Any, sha: str) -> dict[str, Any]:
    """The result for an adapter registered before; a version left without any alias gets ``challenger``.

    A registration killed between creating its version and setting the alias leaves exactly that
    state: registering again finishes the job (idempotent). A version that holds an alias (it was
    challenger, or was promoted) keeps what it has.
    """
    aliases = sorted(mv.aliases or [])
    if not aliases:
        set_alias(mlflow_client, mv.name, CHALLENGER, str(mv.version))
        aliases = [CHALLENGER]
    return {
        "name": mv.name,
        "version": str(mv.version),
        "created": False,
        "adapter_sha256": sha,
        "run_id": mv.run_id,
        "aliases": aliases,
    }


def register_package(
    export_dir: str | Path,
    name: str,
    tags: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
    *,
    pipeline_run_id: str | None = None,
    commit: str | None = None,
) -> dict[str, Any]:
    """Register an export package as a new model version (or return the one holding the same adapter).

    The version is a pyfunc model whose data is the package and whose loader is
    :mod:`deepsynth.registry.pyfunc_loader` from the installed library (no code is logged with it),
    so MLflow's own loaders (``mlflow.pyfunc.load_model``, ``mlflow models serve``) check the package
    against this version's tags before loading it; ``predict`` summarizes texts. Its requirements are
    the package's (public packages only); the loading environment also needs ``deepsynth`` installed.
    It is logged into the active MLflow run, or a new run when none is active.

    Args:
        export_dir: A directory written by :func:`deepsynth.export.export_adapter` (verified first).
        name: Registered model name.
        tags: Extra version tags.
        metrics: Evaluation metrics (stored as ``metric.<name>`` version tags and logged to the run).
        pipeline_run_id: The ZenML pipeline run id (tag ``zenml_pipeline_run_id``).
        commit: Git commit (default: ``git rev-parse HEAD`` of the working directory).

    Raises:
        ConfigError: ``name`` is not a usable registered model name (nothing is created).

    Returns:
        ``{"name", "version", "created", "adapter_sha256", "run_id", "aliases"}``; ``created`` is false
        when a version with the same adapter sha256 already existed (no new version is made; one
        without any alias, as a killed registration leaves it, gets ``challenger`` now).
    """
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    check_model_name(name)  # before anything is created: a name no filter can hold leaves nothing behind
    export_dir = Path(export_dir)
    manifest = verify_directory(export_dir)
    sha = manifest["adapter_sha256"]
    mlflow_client = client()
    try:
        mlflow_client.get_registered_model(name)
    except Exception:  # noqa: BLE001 - MlflowException RESOURCE_DOES_NOT_EXIST
        try:
            mlflow_client.create_registered_model(name, description=DESCRIPTION)
        except Exception:  # noqa: BLE001 - a concurrent registration created it first (RESOURCE_ALREADY_EXISTS)
            mlflow_client.get_registered_model(name)  # anything else (an outage) raises here
    existing = _find_by_sha(name, sha)
    if existing is not None:
        return _already_registered(mlflow_client, existing, sha)

    all_tags = {
        "base_model": str(manifest.get("base_model")),
        "base_revision": str(manifest.get("base_revision") or "none"),
        "dataset_hash": str(manifest.get("dataset_hash") or "unknown"),
        "zenml_pipeline_run_id": pipeline_run_id or "none",
        "git_commit": commit or git_commit(),
        "adapter_sha256": sha,
        "merged": str(bool(manifest.get("merged"))).lower(),
        **(tags or {}),
        MANIFEST_SHA_TAG: sha256_file(export_dir / MANIFEST),
    }
    clean = {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    # The package's public pins. No code is logged: what MLflow would import from the artifact store
    # could not be checked before it ran (the verifying loader is the installed deepsynth's).
    requirements = [
        ln for ln in (export_dir / "requirements.txt").read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    signature = ModelSignature(Schema([ColSpec("string", "text")]), Schema([ColSpec("string")]))
    with tempfile.TemporaryDirectory(prefix="deepsynth-register-") as tmp:
        staged = Path(tmp) / PACKAGE_ARTIFACT  # the zip beside the files would double the artifact size
        package_name = manifest.get("package_name")
        shutil.copytree(export_dir, staged, ignore=lambda d, names: [n for n in names if n == package_name])
        own_run = mlflow.active_run() is None
        run = mlflow.start_run(run_name=f"register-{name}") if own_run else mlflow.active_run()
        try:
            info = mlflow.pyfunc.log_model(
                name="model",
                loader_module=LOADER_MODULE,
                data_path=str(staged),
                pip_requirements=requirements,
                signature=signature,
                metadata={"adapter_sha256": sha},
            )
            finite = {k: v for k, v in clean.items() if math.isfinite(v)}
            if finite:
                mlflow.log_metrics(finite)
        finally:
            if own_run:
                mlflow.end_run()
    # The tags go on with the version, so that a concurrent registration of this adapter sees its sha.
    version_tags = {**all_tags, **{f"{METRIC_PREFIX}{k}": repr(v) for k, v in clean.items()}}
    version = str(mlflow.register_model(info.model_uri, name, tags=version_tags).version)
    # Version numbers are assigned in commit order: a racing registration of this adapter that got a
    # lower number is already visible here.
    first = _find_by_sha(name, sha)
    if first is not None and str(first.version) != version:
        # Another process registered the same adapter meanwhile: the older version stands, ours goes.
        mlflow_client.delete_model_version(name, version)
        return _already_registered(mlflow_client, first, sha)
    set_alias(mlflow_client, name, CHALLENGER, version)
    return {
        "name": name,
        "version": version,
        "created": True,
        "adapter_sha256": sha,
        "run_id": run.info.run_id,
        "aliases": [CHALLENGER],
    }
