"""MLflow model registry access: register export packages, gate promotion, and browse versions.

No tracking URI is set here: callers (the ZenML stack's experiment tracker, the CLI, tests) choose
the store. Aliases, not stages: a new version gets ``challenger``; ``champion`` moves only through
:func:`promote_if_better` or an explicit :func:`promote`. Functions return plain JSON-able dicts.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from deepsynth.integrity import sha256_file
from deepsynth.errors import ConfigError, DeepSynthError
from deepsynth.evaluation.metrics import NonFiniteMetricError, assert_finite
from deepsynth.export.package import MANIFEST, PackageError, verify_directory
from deepsynth.export.runtime import LIBRARY
from deepsynth.paths import is_empty_folder
from deepsynth.registry.catalog import Index, check_ref, parse_ref
from deepsynth.registry.pyfunc_model import PACKAGE_ARTIFACT

CHAMPION, CHALLENGER = "champion", "challenger"
METRIC_PREFIX = "metric."
KEY_METRICS = ("rouge_1", "rouge_2", "rouge_l")
ENTRY = Path(__file__).with_name("pyfunc_entry.py")
#: Version tags a downloaded package must match: the adapter's identity and the manifest's own bytes.
ADAPTER_SHA_TAG, MANIFEST_SHA_TAG = "adapter_sha256", "manifest_sha256"

logger = logging.getLogger(__name__)


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def git_commit(cwd: str | Path | None = None) -> str:
    """The current git commit of ``cwd`` (``unknown`` outside a repository)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def _iso(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat() if ms else None


def _metrics_from_tags(tags: dict[str, str]) -> dict[str, float]:
    return {k.removeprefix(METRIC_PREFIX): float(v) for k, v in tags.items() if k.startswith(METRIC_PREFIX)}


def _version_dict(mv: Any) -> dict[str, Any]:
    tags = dict(mv.tags or {})
    return {
        "name": mv.name, "version": str(mv.version), "aliases": sorted(mv.aliases or []),
        "created": _iso(mv.creation_timestamp), "run_id": mv.run_id, "source": mv.source, "status": mv.status,
        "metrics": _metrics_from_tags(tags), "tags": {k: v for k, v in tags.items() if not k.startswith(METRIC_PREFIX)},
        "uri": f"models:/{mv.name}/{mv.version}",
    }


def _versions(name: str) -> list[Any]:
    client = _client()
    # search_model_versions leaves aliases empty: fetch each version for them.
    found = client.search_model_versions(f"name = '{name}'")
    return sorted((client.get_model_version(name, mv.version) for mv in found), key=lambda mv: int(mv.version))


def _find_by_sha(name: str, sha: str) -> Any | None:
    for mv in _versions(name):
        if (mv.tags or {}).get("adapter_sha256") == sha:
            return mv
    return None


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

    The version is a pyfunc model whose artifacts are the package; ``predict`` summarizes texts. Its
    requirements are the package's (public packages only) and its code the ``deepsynth`` library the
    package carries, so MLflow's own loaders (``mlflow.pyfunc.load_model``, ``mlflow models serve``)
    run it in an environment made from those requirements.
    It is logged into the active MLflow run, or a new run when none is active.

    Args:
        export_dir: A directory written by :func:`deepsynth.export.export_adapter` (verified first).
        name: Registered model name.
        tags: Extra version tags.
        metrics: Evaluation metrics (stored as ``metric.<name>`` version tags and logged to the run).
        pipeline_run_id: The ZenML pipeline run id (tag ``zenml_pipeline_run_id``).
        commit: Git commit (default: ``git rev-parse HEAD`` of the working directory).

    Returns:
        ``{"name", "version", "created", "adapter_sha256", "run_id", "aliases"}``; ``created`` is false
        when a version with the same adapter sha256 already existed (no new version is made).
    """
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    export_dir = Path(export_dir)
    manifest = verify_directory(export_dir)
    sha = manifest["adapter_sha256"]
    client = _client()
    try:
        client.get_registered_model(name)
    except Exception:  # noqa: BLE001 - MlflowException RESOURCE_DOES_NOT_EXIST
        try:
            client.create_registered_model(name, description="DeepSynth summarizer (DeepSeek-OCR + LoRA) export packages")
        except Exception:  # noqa: BLE001 - a concurrent registration created it first (RESOURCE_ALREADY_EXISTS)
            client.get_registered_model(name)  # anything else (an outage) raises here
    existing = _find_by_sha(name, sha)
    if existing is not None:
        return {"name": name, "version": str(existing.version), "created": False, "adapter_sha256": sha,
                "run_id": existing.run_id, "aliases": sorted(existing.aliases or [])}

    all_tags = {
        "base_model": str(manifest.get("base_model")), "base_revision": str(manifest.get("base_revision") or "none"),
        "dataset_hash": str(manifest.get("dataset_hash") or "unknown"),
        "zenml_pipeline_run_id": pipeline_run_id or "none", "git_commit": commit or git_commit(),
        "adapter_sha256": sha, "merged": str(bool(manifest.get("merged"))).lower(), **(tags or {}),
        MANIFEST_SHA_TAG: sha256_file(export_dir / MANIFEST),
    }
    clean = {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    # The package's public pins; the deepsynth library it carries goes in as the model's code.
    requirements = [ln for ln in (export_dir / "requirements.txt").read_text().splitlines()
                    if ln.strip() and not ln.startswith("#")]
    signature = ModelSignature(Schema([ColSpec("string", "text")]), Schema([ColSpec("string")]))
    with tempfile.TemporaryDirectory(prefix="deepsynth-register-") as tmp:
        staged = Path(tmp) / "package"  # the zip beside the files would double the artifact size
        package_name = manifest.get("package_name")
        shutil.copytree(export_dir, staged, ignore=lambda d, names: [n for n in names if n == package_name])
        own_run = mlflow.active_run() is None
        run = mlflow.start_run(run_name=f"register-{name}") if own_run else mlflow.active_run()
        try:
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(ENTRY), artifacts={PACKAGE_ARTIFACT: str(staged)},
                pip_requirements=requirements, signature=signature, code_paths=[str(staged / LIBRARY)],
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
        client.delete_model_version(name, version)
        return {"name": name, "version": str(first.version), "created": False, "adapter_sha256": sha,
                "run_id": first.run_id, "aliases": sorted(first.aliases or [])}
    _set_alias(client, name, CHALLENGER, version)
    return {"name": name, "version": version, "created": True, "adapter_sha256": sha, "run_id": run.info.run_id,
            "aliases": [CHALLENGER]}


def _set_alias(client: Any, name: str, alias: str, version: str, attempts: int = 5) -> None:
    """Point ``alias`` at ``version``, trying again after losing an insert race.

    Two processes setting a new alias at once both try to insert it (MLflow's SQL store checks, then
    inserts): the loser's unique-constraint error means the row now exists, and a retry updates it.
    """
    for attempt in range(attempts):
        try:
            client.set_registered_model_alias(name, alias, version)
            return
        except Exception as exc:  # noqa: BLE001 - MlflowException wrapping the database's IntegrityError
            lost_race = "UNIQUE constraint" in str(exc) or "duplicate key" in str(exc)
            if not lost_race or attempt == attempts - 1:
                raise


def _alias_version(name: str, alias: str) -> Any | None:
    try:
        return _client().get_model_version_by_alias(name, alias)
    except Exception:  # noqa: BLE001 - no such alias
        return None


def promote_if_better(name: str, version: str | int, metric: str = "rouge_l", margin: float = 0.0,
                      alias: str = CHAMPION) -> dict[str, Any]:
    """Make ``version`` the champion only if all its metrics are finite and it beats the champion by ``margin``.

    Args:
        name: Registered model name.
        version: Candidate version.
        metric: Gated metric (higher is better).
        margin: Required improvement over the current champion (strictly more than this).
        alias: The alias to move.

    Returns:
        ``{"promoted", "reason", "champion", "previous_champion", "candidate_value", "champion_value"}``.
    """
    client = _client()
    version = str(version)
    candidate = client.get_model_version(name, version)
    metrics = _metrics_from_tags(dict(candidate.tags or {}))
    current = _alias_version(name, alias)
    previous = str(current.version) if current is not None else None
    result = {"promoted": False, "champion": previous, "previous_champion": previous, "metric": metric,
              "margin": margin, "candidate_value": metrics.get(metric), "champion_value": None}
    try:
        assert_finite(metrics, f"{name} v{version} metrics")
    except NonFiniteMetricError as exc:
        return {**result, "reason": str(exc)}
    if metric not in metrics:
        return {**result, "reason": f"{name} v{version} has no {metric!r} metric; champion kept"}
    if current is not None:
        if previous == version:
            return {**result, "reason": f"v{version} already holds @{alias}"}
        champ = _metrics_from_tags(dict(current.tags or {})).get(metric)
        result["champion_value"] = champ
        if champ is not None and math.isfinite(champ) and not metrics[metric] > champ + margin:
            return {**result, "reason": f"{metric} {metrics[metric]:.4f} does not beat champion v{previous} "
                                        f"({champ:.4f}) by more than {margin}; champion kept"}
    _set_alias(client, name, alias, version)
    why = "no champion yet" if current is None else f"beats v{previous} by more than {margin}"
    return {**result, "promoted": True, "champion": version, "reason": f"v{version} promoted to @{alias}: {why}"}


def promote(name: str, version: str | int, alias: str = CHAMPION) -> dict[str, Any]:
    """Point ``alias`` at ``version`` unconditionally (a person's decision; the CLI's ``models promote``)."""
    client = _client()
    _resolve(f"{name}/{version}")  # an unknown model or version: a ConfigError naming what exists
    _set_alias(client, name, alias, str(version))
    return _version_dict(client.get_model_version(name, str(version)))


def registry_index(client: Any = None) -> Index:
    """What the registry holds (see :mod:`deepsynth.registry.catalog`), through the MLflow client."""
    client = client or _client()
    index: Index = {}
    for rm in client.search_registered_models():
        versions = sorted((str(mv.version) for mv in client.search_model_versions(f"name = '{rm.name}'")), key=int)
        index[rm.name] = {"versions": versions, "aliases": {a: str(v) for a, v in (rm.aliases or {}).items()}}
    return index


@contextlib.contextmanager
def _named_if_missing(ref: str, client: Any) -> Iterator[None]:
    """Turn MLflow's "not found" for ``ref`` into a :class:`ConfigError` naming what the registry holds."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        check_ref(ref, registry_index(client))  # raises, naming what exists
        raise


def _resolve(ref: str) -> Any:
    name, version, alias = parse_ref(ref)
    if not (version or alias):
        raise ConfigError(f"{ref!r} names no version: use NAME/VERSION or NAME@ALIAS")
    client = _client()
    with _named_if_missing(ref, client):
        return client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)


def _listed_versions(client: Any, rm: Any) -> list[dict[str, Any]]:
    """Versions of registered model ``rm`` in two queries: aliases come with the model, not per version."""
    aliases: dict[str, list[str]] = {}
    for alias, version in (rm.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    found = client.search_model_versions(f"name = '{rm.name}'")
    return sorted(({**_version_dict(mv), "aliases": sorted(aliases.get(str(mv.version), []))} for mv in found),
                  key=lambda v: int(v["version"]))


def list_models() -> list[dict[str, Any]]:
    """Every registered model with its versions, aliases, key metrics and creation times."""
    client, out = _client(), []
    for rm in client.search_registered_models():
        versions = _listed_versions(client, rm)
        out.append({
            "name": rm.name, "created": _iso(rm.creation_timestamp), "description": rm.description or "",
            "aliases": {a: v["version"] for v in versions for a in v["aliases"]},
            "versions": [{k: v[k] for k in ("version", "aliases", "created", "status")}
                         | {"metrics": {m: v["metrics"][m] for m in KEY_METRICS if m in v["metrics"]}}
                         for v in versions],
        })
    return sorted(out, key=lambda m: m["name"])


def show(ref: str) -> dict[str, Any]:
    """Details of ``NAME`` (all versions), ``NAME/VERSION`` or ``NAME@ALIAS``."""
    name, version, alias = parse_ref(ref)
    client = _client()
    if version is None and alias is None:
        with _named_if_missing(ref, client):
            rm = client.get_registered_model(name)
        return {"name": name, "created": _iso(rm.creation_timestamp), "description": rm.description or "",
                "versions": _listed_versions(client, rm)}
    return _version_dict(_resolve(ref))  # get_model_version(_by_alias) carries the aliases


def verify_registered(package_dir: str | Path, mv: Any) -> dict[str, Any]:
    """Check a downloaded package against its manifest and against the registry version it came from.

    The artifact store can be changed without the registry noticing, manifest and all; the version's
    ``adapter_sha256`` tag (and ``manifest_sha256``, on versions registered since it exists) cannot.

    Args:
        package_dir: The package folder of the downloaded version.
        mv: The MLflow model version.

    Returns:
        The manifest.

    Raises:
        PackageError: The package fails its manifest, or is not the one registered.
    """
    package_dir = Path(package_dir)
    where = f"models:/{mv.name}/{mv.version}"
    manifest = verify_directory(package_dir)
    tags = dict(mv.tags or {})
    registered = tags.get(ADAPTER_SHA_TAG)
    if not registered:
        raise PackageError(f"{where}: the registry version has no {ADAPTER_SHA_TAG} tag, so its package cannot be verified")
    if manifest.get("adapter_sha256") != registered:
        raise PackageError(f"{where}: the stored package holds adapter {str(manifest.get('adapter_sha256'))[:64]}, not the "
                           f"{registered} the registry recorded: it was changed after registration")
    if MANIFEST_SHA_TAG not in tags:
        logger.warning("%s was registered without a %s tag: only its adapter weights are checked against the registry",
                       where, MANIFEST_SHA_TAG)
    elif sha256_file(package_dir / MANIFEST) != tags[MANIFEST_SHA_TAG]:
        raise PackageError(f"{where}: the stored package's {MANIFEST} is not the one the registry recorded "
                           f"({MANIFEST_SHA_TAG} tag): the package was changed after registration")
    return manifest


def _package_root(local: Path, where: str) -> Path:
    """The export package inside a downloaded version: the pyfunc's package artifact (older layouts: the shallowest manifest)."""
    logged = local / "artifacts" / PACKAGE_ARTIFACT
    if (logged / MANIFEST).is_file():
        return logged
    manifests = sorted(local.rglob(MANIFEST), key=lambda p: len(p.parts))
    if not manifests:
        raise DeepSynthError(f"{where} holds no export package (no {MANIFEST})")
    return manifests[0].parent


def fetch_package(ref: str, dst: str | Path) -> dict[str, Any]:
    """Download a version's export package under ``dst`` and verify it (see :func:`verify_registered`).

    Args:
        ref: ``NAME/VERSION`` or ``NAME@ALIAS`` (``models:/`` prefix optional).
        dst: Download folder (the package lies somewhere inside it).

    Returns:
        ``{"name", "version", "path", "adapter_sha256"}``; ``path`` is the verified package folder.
    """
    return _fetch(_resolve(ref), Path(dst))


def _fetch(mv: Any, dst: Path) -> dict[str, Any]:
    import mlflow

    where = f"models:/{mv.name}/{mv.version}"  # the resolved version, not an alias that may move meanwhile
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=where, dst_path=str(dst)))
    package = _package_root(local, where)
    verify_registered(package, mv)
    return {"name": mv.name, "version": str(mv.version), "path": str(package), "adapter_sha256": mv.tags[ADAPTER_SHA_TAG]}


def download(ref: str, out_dir: str | Path) -> dict[str, Any]:
    """Download a version's export package into ``out_dir``, verified against its manifest and the registry.

    Args:
        ref: ``NAME/VERSION`` or ``NAME@ALIAS`` (``models:/`` prefix optional).
        out_dir: Target directory (created; must be empty if it exists).

    Returns:
        ``{"name", "version", "path", "adapter_sha256"}`` (the sha256 is the registry's, which the package matched).

    Raises:
        PackageError: The stored package fails its manifest or is not the one registered (nothing is written).
    """
    out_dir = Path(out_dir)
    if not is_empty_folder(out_dir):
        raise ConfigError(f"{out_dir}: not an empty folder (nothing was downloaded)")
    mv = _resolve(ref)
    with tempfile.TemporaryDirectory(prefix="deepsynth-download-") as tmp:
        fetched = _fetch(mv, Path(tmp))
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(fetched["path"], out_dir, dirs_exist_ok=True)
    verify_registered(out_dir, mv)
    return {**fetched, "path": str(out_dir)}
