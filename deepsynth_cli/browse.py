"""``deepsynth runs``: browse this home's pipeline runs (ZenML's store; registered versions from MLflow's registry)."""

from __future__ import annotations

import json
from typing import Any

import click

from deepsynth_cli.output import Group, echo, echo_json, json_option


@click.group(cls=Group)
def runs() -> None:
    """Browse the pipeline runs of this home: the recent ones, and one in detail."""


def _store() -> tuple[Any, str | None]:
    """ZenML's client on this home's store (a home where nothing ran is an error) and MLflow's tracking URI."""
    from deepsynth_cli.logs import import_zenml
    from pipelines.local_stack import prepare_environment
    from pipelines.stores import require_ready

    prepare_environment()
    record = require_ready()
    import_zenml()
    from zenml.client import Client

    return Client(), (record or {}).get("tracking_uri")


def table(rows: list[list[str]]) -> list[str]:
    """``rows`` (the first is the header) as left-aligned columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


@runs.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs, newest first.")
@json_option
def runs_list(limit: int, as_json: bool) -> None:
    """List recent pipeline runs: name, pipeline, status, start, duration and the version each registered."""
    from pipelines.run_browser import recent_runs

    client, uri = _store()
    found = recent_runs(client, uri, limit)
    if as_json:
        echo_json(found)
        return
    if not found:
        echo("no pipeline runs yet: run `make run` (or deepsynth run --config ...)")
        return
    rows = [["NAME", "PIPELINE", "STATUS", "STARTED", "DURATION", "REGISTERED"]]
    rows += [
        [
            r["name"],
            r["pipeline"] or "-",
            r["status"],
            r["start"] or "-",
            _seconds(r["duration_s"]),
            ", ".join(r["registered"]) or "-",
        ]
        for r in found
    ]
    for line in table(rows):
        echo(line)


@runs.command("show")
@click.argument("ref", metavar="RUN")
@json_option
def runs_show(ref: str, as_json: bool) -> None:
    """Show a run: status, steps (durations, cache hits), how training ran, metrics, reports, registered
    version and config. RUN is a run name, id, unique id prefix, or `latest`."""
    from pipelines.run_browser import describe_run, find_run

    client, uri = _store()
    detail = describe_run(find_run(client, ref), uri)
    if as_json:
        echo_json(detail)
        return
    for line in describe_text(detail):
        echo(line)


def _numbers(values: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in values.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    )


def describe_text(d: dict[str, Any]) -> list[str]:
    """The lines of ``deepsynth runs show`` without ``--json``."""
    lines = [
        f"run:       {d['run_name']}  ({d['run_id']})",
        f"pipeline:  {d['pipeline']}   status: {d['status']}",
        f"started:   {d['start'] or '-'}   duration: {_seconds(d['duration_s'])}",
        f"steps ({d['cache_hits']} cache hit(s)):",
    ]
    steps = [[name, s["status"], _seconds(s["duration_s"])] for name, s in d["steps"].items()]
    lines += ["  " + line for line in table(steps)]
    if d.get("training"):
        t = d["training"]
        lines.append(
            f"training:  world_size {t['world_size']} (processes), device {t['device']}, "
            f"precision {t['precision']}, quantization {t['quantization']}"
        )
    if "ingested" in d:
        lines.append(
            f"data:      ingested {d['ingested']}, valid {d['valid']}, quarantined {d['quarantined']}, "
            f"validation {'passed' if d['validation_passed'] else 'failed'}"
        )
    if d.get("adapter") or d.get("evaluation"):
        lines.append("metrics:")
        if d.get("adapter"):
            lines.append(f"  training: {_numbers(d['adapter'])}")
        lines += [f"  {system}: {_numbers(metrics)}" for system, metrics in (d.get("evaluation") or {}).items()]
    registration = d.get("registration")
    if registration:
        aliases = " ".join(f"@{a}" for a in registration.get("aliases") or [])
        reason = (registration.get("promotion") or {}).get("reason")
        lines.append(
            f"registered: {registration['name']} v{registration['version']} {aliases}".rstrip()
            + (f"  ({reason})" if reason else "")
        )
    elif d.get("registered"):
        lines.append("registered: " + ", ".join(d["registered"]))
    for name, where in (d.get("reports") or {}).items():
        lines.append(f"{name} report: " + "  ".join(where.values()))
    lines.append("config:")
    lines += [
        f"  {section}: {json.dumps(value, ensure_ascii=False, default=str)}" for section, value in d["config"].items()
    ]
    return lines
