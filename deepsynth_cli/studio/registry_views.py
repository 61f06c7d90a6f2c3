"""Registry operations for the Studio: list, show, compare, promote with a recorded reason, download."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from deepsynth.errors import ConfigError

#: Version tags a Studio promotion records.
REASON_TAG, PROMOTED_BY_TAG = "promotion_reason", "promoted_by"


def registry():
    """:mod:`deepsynth.registry` with MLflow pointed at the project's stack; HTTP 404 before the first run."""
    from deepsynth_cli.studio.live import tracking

    if tracking() is None:
        raise HTTPException(404, "no registry yet: nothing has run with this DeepSynth home")
    from deepsynth import registry as module

    return module


def known(call, ref: str) -> Any:
    """``call()``, with an unknown model or version as HTTP 404 and a bad reference as 400."""
    from mlflow.exceptions import MlflowException

    try:
        return call()
    except ConfigError as exc:
        raise HTTPException(400, str(exc)) from None
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise HTTPException(404, f"{ref}: no such registered model or version") from None
        raise


def list_models() -> list[dict[str, Any]]:
    """Registered models with versions, aliases and metrics."""
    return registry().list_models()


def show(ref: str) -> dict[str, Any]:
    """One version (``NAME/VERSION`` or ``NAME@ALIAS``) as JSON."""
    found = registry()
    return known(lambda: found.show(ref), ref)


def compare(a: str, b: str) -> dict[str, Any]:
    """``deepsynth models compare``'s table: metrics side by side, config and data differences."""
    registry()
    from deepsynth_cli.compare import compare_versions

    return known(lambda: compare_versions(a, b), f"{a} / {b}")


def promote(name: str, version: str, alias: str, reason: str) -> dict[str, Any]:
    """Point ``alias`` at the version, recording ``reason`` and the time as version tags (a person's decision)."""
    if not reason.strip():
        raise HTTPException(422, "reason: say why this version is promoted (it is recorded on the version)")
    found = registry()
    result = known(lambda: found.promote(name, version, alias=alias), f"{name}/{version}")
    from mlflow import MlflowClient

    client = MlflowClient()
    client.set_model_version_tag(name, version, REASON_TAG, reason.strip()[:500])
    client.set_model_version_tag(
        name, version, PROMOTED_BY_TAG, f"studio {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} @{alias}"
    )
    return {**result, "reason": reason.strip()[:500]}


def download_zip(ref: str) -> Path:
    """The version's verified export package as a zip in a new temporary folder (the caller removes it)."""
    found = registry()
    work = Path(tempfile.mkdtemp(prefix="deepsynth-studio-download-"))
    try:
        known(lambda: found.download(ref, work / "package"), ref)
        return Path(shutil.make_archive(str(work / "package"), "zip", work / "package"))
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
