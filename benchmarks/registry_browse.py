"""Browsing the registry: ``deepsynth models list/show`` against a bare ``MlflowClient`` on the same store.

    python -m benchmarks.registry_browse [--versions 5] [--repeats 5]

Sets up a fresh home (the embedded local stack, MLflow on SQLite), registers one model with
``--versions`` versions (metric tags, a champion alias), then times each command as a user runs
it (a new process, ``--json``) and a new Python process doing the same look-up with a bare
``MlflowClient``, interleaved: the median wall and CPU time of ``--repeats`` runs each (CPU time
is the steadier figure on a shared machine). Goals: at most 1.5 s wall (issue 28) and 1.5x the
bare client's. On the local stack the commands read the registry's SQLite file without MLflow
(:func:`deepsynth.registry.catalog.sqlite_records`), which is why they can beat the bare client.
Writes benchmarks/results/registry_browse.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import timed, write_result

NAME = "bench-summarizer"
GOAL_WALL_S = 1.5
# The same look-ups as the commands, with nothing else: a new interpreter, mlflow, one client.
BARE = {
    "list": "c.search_registered_models(); c.search_model_versions(\"name = '{name}'\")",
    "show NAME": "c.get_registered_model('{name}'); c.search_model_versions(\"name = '{name}'\")",
    "show NAME@champion": "c.get_model_version_by_alias('{name}', 'champion')",
}
COMMANDS = {
    "list": ["models", "list", "--json"],
    "show NAME": ["models", "show", NAME, "--json"],
    "show NAME@champion": ["models", "show", f"{NAME}@champion", "--json"],
}


def _set_up(home: Path, versions: int) -> str:
    """A home with the local stack and ``versions`` registered versions; the tracking URI."""
    os.environ["DEEPSYNTH_HOME"] = str(home)
    os.environ["ZENML_CONFIG_PATH"] = str(home / "zenml")
    from mlflow import MlflowClient

    from pipelines.local_stack import ensure_stack, use_stack_tracking

    ensure_stack()
    uri = use_stack_tracking()
    client = MlflowClient(uri)
    client.create_registered_model(NAME)
    source = home / "package"
    source.mkdir()
    for i in range(versions):
        client.create_model_version(
            NAME, str(source), tags={"metric.rouge_l": str(0.1 + i / 100), "adapter_sha256": f"{i:064x}"}
        )
    client.set_registered_model_alias(NAME, "champion", str(versions))
    return uri


def _versions_shown(what: str, stdout: str) -> list[str]:
    """The version numbers a command's ``--json`` output shows (so what is timed is the real look-up)."""
    found = json.loads(stdout)
    if what == "list":
        return [v["version"] for model in found if model["name"] == NAME for v in model["versions"]]
    return [v["version"] for v in found["versions"]] if "versions" in found else [found["version"]]


def _timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``argv`` in a new process."""
    proc, wall, cpu = timed(argv, timeout=300)
    proc.check_returncode()
    return wall, cpu


def _compare(cli: list[str], bare: list[str], repeats: int) -> dict[str, float]:
    """Medians of interleaved runs (so a busy moment of the machine hits both alike) and their ratios."""
    runs = {"deepsynth": [], "bare": []}
    for _ in range(repeats):
        runs["bare"].append(_timed(bare))
        runs["deepsynth"].append(_timed(cli))
    out = {}
    for who, measured in runs.items():
        out[f"{who}_wall_s"] = round(statistics.median(w for w, _ in measured), 3)
        out[f"{who}_cpu_s"] = round(statistics.median(c for _, c in measured), 3)
    out["wall_ratio"] = round(out["deepsynth_wall_s"] / out["bare_wall_s"], 2)
    out["cpu_ratio"] = round(out["deepsynth_cpu_s"] / out["bare_cpu_s"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=5, help="registered versions of the model")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (the median is reported)")
    args = parser.parse_args()
    deepsynth = str(Path(sys.executable).with_name("deepsynth"))
    rows = {}
    with tempfile.TemporaryDirectory(prefix="deepsynth-browse-") as tmp:
        uri = _set_up(Path(tmp) / "home", args.versions)
        for what, argv in COMMANDS.items():
            out = subprocess.run([deepsynth, *argv], check=True, capture_output=True, text=True, timeout=300).stdout
            expected = [str(args.versions)] if "@champion" in what else [str(i + 1) for i in range(args.versions)]
            if sorted(_versions_shown(what, out), key=int) != expected:
                raise SystemExit(f"deepsynth {' '.join(argv)} did not show versions {expected}:\n{out[:2000]}")
            bare = f"from mlflow import MlflowClient; c = MlflowClient({uri!r}); " + BARE[what].format(name=NAME)
            rows[what] = row = _compare([deepsynth, *argv], [sys.executable, "-c", bare], args.repeats)
            print(
                f"{what:<20} deepsynth {row['deepsynth_wall_s']:5.2f} s wall, {row['deepsynth_cpu_s']:5.2f} s CPU;  "
                f"bare MlflowClient {row['bare_wall_s']:5.2f} s wall, {row['bare_cpu_s']:5.2f} s CPU;  "
                f"ratio {row['wall_ratio']:.2f}x wall, {row['cpu_ratio']:.2f}x CPU (goals <= {GOAL_WALL_S} s, <= 1.5x)",
                file=sys.stderr,
            )
    path = write_result(
        "registry_browse",
        {
            "versions": args.versions,
            "repeats": args.repeats,
            "goal_ratio": 1.5,
            "goal_wall_s": GOAL_WALL_S,
            "commands": rows,
        },
    )
    print(path)


def report_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """BENCHMARKS.md rows (what, command, baseline, result) of a result of this benchmark."""
    rows = []
    for what, x in r["commands"].items():
        goal = r.get("goal_wall_s")
        met = x["wall_ratio"] <= r["goal_ratio"] and (goal is None or x["deepsynth_wall_s"] <= goal)
        rows.append(
            (
                f"`deepsynth models {what}` ({r['versions']} versions), new process each",
                "python -m benchmarks.registry_browse",
                f"bare MlflowClient, same look-up: {x['bare_wall_s']} s wall, {x['bare_cpu_s']} s CPU",
                f"{x['deepsynth_wall_s']} s wall, {x['deepsynth_cpu_s']} s CPU: **{x['wall_ratio']}x** wall, "
                f"**{x['cpu_ratio']}x** CPU (goals ≤ {goal} s wall and ≤ {r['goal_ratio']}x: "
                f"{'met' if met else 'not met'})",
            )
        )
    return rows


if __name__ == "__main__":
    main()
