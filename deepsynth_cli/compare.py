"""``deepsynth models compare A B``: two registered versions side by side (metrics, config, data)."""

from __future__ import annotations

from typing import Any

import click

from deepsynth_cli.output import Command, echo, echo_json, json_option

#: Version tags that identify a version rather than configure it (shown in the header, never diffed).
IDENTITY_TAGS = ("adapter_sha256", "manifest_sha256", "zenml_pipeline_run_id", "zenml_model_version")
#: Tags that describe the data the version was trained on.
DATA_TAGS = ("dataset_hash",)
#: Run parameters that are paths of the run's own outputs: they differ between any two runs.
PER_RUN_PARAMS = ("output_dir", "state_dir")
#: Training figures of the registering run shown beside the evaluation metrics.
TRAINING_METRICS = ("initial_loss", "final_loss", "global_step", "train_runtime_s", "samples_per_second")


def _differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: {"a": a.get(k), "b": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _side(version: dict[str, Any], ref: str, run: Any) -> dict[str, Any]:
    tags = version["tags"]
    return {
        "ref": ref,
        "name": version["name"],
        "version": version["version"],
        "aliases": version["aliases"],
        "created": version["created"],
        "mlflow_run_id": version["run_id"],
        "mlflow_run": run.info.run_name if run else None,
        **{k: tags.get(k) for k in IDENTITY_TAGS},
    }


def compare_versions(ref_a: str, ref_b: str) -> dict[str, Any]:
    """Metrics side by side with their difference (B − A), config (run parameters, tags) and data-hash differences."""
    from mlflow import MlflowClient

    from deepsynth import registry
    from deepsynth.errors import ConfigError
    from deepsynth.registry.refs import ModelRef
    from deepsynth_cli.models import known_model, point_mlflow_at_stack

    point_mlflow_at_stack(ref_a, ref_b)
    for ref in (ref_a, ref_b):
        parsed = ModelRef.registry(ref)
        if parsed.version is None and parsed.alias is None:
            raise ConfigError(f"{ref}: names a model, not a version: use NAME/VERSION or NAME@ALIAS")
    client = MlflowClient()
    versions, runs = [], []
    for ref in (ref_a, ref_b):
        with known_model(ref):
            versions.append(registry.show(ref))
        run_id = versions[-1]["run_id"]
        runs.append(client.get_run(run_id) if run_id else None)
    metrics = [
        {**{k: v for k, v in (run.data.metrics if run else {}).items() if k in TRAINING_METRICS}, **v["metrics"]}
        for v, run in zip(versions, runs)
    ]
    table = {}
    for key in sorted(set(metrics[0]) | set(metrics[1])):
        a, b = metrics[0].get(key), metrics[1].get(key)
        table[key] = {"a": a, "b": b, "difference": b - a if a is not None and b is not None else None}
    params = [{k: v for k, v in (run.data.params if run else {}).items() if k not in PER_RUN_PARAMS} for run in runs]
    tags = [{k: v for k, v in ver["tags"].items() if k not in IDENTITY_TAGS + DATA_TAGS} for ver in versions]
    data = {
        k: {
            "a": versions[0]["tags"].get(k),
            "b": versions[1]["tags"].get(k),
            "same": versions[0]["tags"].get(k) == versions[1]["tags"].get(k),
        }
        for k in DATA_TAGS
    }
    return {
        "a": _side(versions[0], ref_a, runs[0]),
        "b": _side(versions[1], ref_b, runs[1]),
        "metrics": table,
        "params": _differences(*params),
        "tags": _differences(*tags),
        "data": data,
    }


def _number(value: float | None, sign: str = "") -> str:
    return "-" if value is None else f"{value:{sign}.6g}"


@click.command("compare", cls=Command)
@click.argument("ref_a", metavar="A")
@click.argument("ref_b", metavar="B")
@json_option
def compare(ref_a: str, ref_b: str, as_json: bool) -> None:
    """Compare two registered versions (NAME/VERSION or NAME@ALIAS): metrics side by side with the
    difference B - A, and what differs in their training config, tags and data."""
    from deepsynth_cli.browse import table

    result = compare_versions(ref_a, ref_b)
    if as_json:
        echo_json(result)
        return
    a, b = result["a"], result["b"]
    for side, label in ((a, "A"), (b, "B")):
        aliases = " ".join(f"@{x}" for x in side["aliases"])
        echo(
            f"{label}: {side['name']} v{side['version']} {aliases}  created {side['created']}  "
            f"run {side['mlflow_run'] or '-'}"
        )
    echo("")
    rows = [["METRIC", "A", "B", "B - A"]]
    rows += [[k, _number(m["a"]), _number(m["b"]), _number(m["difference"], "+")] for k, m in result["metrics"].items()]
    for line in table(rows):
        echo(line)
    for section, title in (("params", "training config"), ("tags", "tags")):
        echo("")
        differing = result[section]
        if not differing:
            echo(f"{title}: the same")
            continue
        echo(f"{title} differences:")
        for line in table([["KEY", "A", "B"]] + [[k, str(d["a"]), str(d["b"])] for k, d in differing.items()]):
            echo("  " + line)
    echo("")
    for key, d in result["data"].items():
        echo(f"data ({key}): the same ({d['a']})" if d["same"] else f"data ({key}) differs: A {d['a']}  B {d['b']}")
