"""The promotion gate: ``champion`` moves only through :func:`promote_if_better` or an explicit :func:`promote`."""

from __future__ import annotations

import math
from typing import Any

from deepsynth.evaluation.metrics import NonFiniteMetricError, assert_finite
from deepsynth.registry.refs import ModelRef
from deepsynth.registry.versions import check_alias, client, metrics_from_tags, set_alias, version_dict

CHAMPION, CHALLENGER = "champion", "challenger"


def _alias_version(name: str, alias: str) -> Any | None:
    try:
        return client().get_model_version_by_alias(name, alias)
    except Exception:  # noqa: BLE001 - no such alias
        return None


def promote_if_better(
    name: str, version: str | int, metric: str = "rouge_l", margin: float = 0.0, alias: str = CHAMPION
) -> dict[str, Any]:
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
    mlflow_client = client()
    version = str(version)
    candidate = mlflow_client.get_model_version(name, version)
    metrics = metrics_from_tags(dict(candidate.tags or {}))
    current = _alias_version(name, alias)
    previous = str(current.version) if current is not None else None
    result = {
        "promoted": False,
        "champion": previous,
        "previous_champion": previous,
        "metric": metric,
        "margin": margin,
        "candidate_value": metrics.get(metric),
        "champion_value": None,
    }
    try:
        assert_finite(metrics, f"{name} v{version} metrics")
    except NonFiniteMetricError as exc:
        return {**result, "reason": str(exc)}
    if metric not in metrics:
        return {**result, "reason": f"{name} v{version} has no {metric!r} metric; champion kept"}
    if current is not None:
        if previous == version:
            return {**result, "reason": f"v{version} already holds @{alias}"}
        champ = metrics_from_tags(dict(current.tags or {})).get(metric)
        result["champion_value"] = champ
        if champ is not None and math.isfinite(champ) and not metrics[metric] > champ + margin:
            return {
                **result,
                "reason": f"{metric} {metrics[metric]:.4f} does not beat champion v{previous} "
                f"({champ:.4f}) by more than {margin}; champion kept",
            }
    set_alias(mlflow_client, name, alias, version)
    why = "no champion yet" if current is None else f"beats v{previous} by more than {margin}"
    return {**result, "promoted": True, "champion": version, "reason": f"v{version} promoted to @{alias}: {why}"}


def promote(name: str, version: str | int, alias: str = CHAMPION) -> dict[str, Any]:
    """Point ``alias`` at ``version`` unconditionally (a person's decision; the CLI's ``models promote``).

    Raises:
        ConfigError: ``alias`` is not one MLflow accepts, or no such model or version (exit code 2).
    """
    check_alias(alias)
    mlflow_client = client()
    # An unknown model or version: a ConfigError naming what exists.
    ModelRef.registry(f"{name}/{version}").version_record()
    set_alias(mlflow_client, name, alias, str(version))
    return version_dict(mlflow_client.get_model_version(name, str(version)))
