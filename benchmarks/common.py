"""Shared benchmark helpers: machine description, peak RSS, result files, sample texts."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """Where a figure was measured."""
    return {
        "cpu_cores": len(os.sched_getaffinity(0)),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size of this process (or of its finished children), in MiB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def timed(command: list[str], **kwargs: Any) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``command`` (output captured, ``kwargs`` to ``subprocess.run``); return it, its wall and CPU seconds.

    CPU is user + system time of the finished process tree: the steadier figure on shared cores.
    """
    before, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    return proc, time.perf_counter() - start, _children_cpu() - before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` with date and machine, and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "date": dt.date.today().isoformat(), "machine": machine(), **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def english_documents(count: int, chars: int = 3000) -> list[dict[str, Any]]:
    """``count`` real English documents of about ``chars`` characters, cut from ACLSum papers."""
    from deepsynth.data.config import IngestConfig
    from deepsynth.data.ingest import ingest

    papers = [row["text"] for row in ingest(IngestConfig(source="aclsum")).rows() if len(row["text"]) >= chars]
    docs = []
    for i in range(count):
        text = papers[i % len(papers)][:chars].rsplit(" ", 1)[0]
        docs.append({"id": f"doc-{i}", "split": "train", "text": text, "summary": "", "instruction": None})
    return docs
