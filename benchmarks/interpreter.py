"""Interpreter builds: the same start-up and no-change run on each Python 3.11 build found on this machine.

    python -m benchmarks.interpreter [--repeats 4] [--python PATH ...]

The project's venv is made from the Makefile's ``PYTHON``. Here each candidate build runs the project
venv's own packages (a throwaway venv per build whose site-packages point at the project venv's, so
only the interpreter differs): ``import zenml, mlflow`` in a fresh process, and a no-change run of the
data pipeline in one shared project home. Runs alternate between the builds, so a change in machine
speed hits all alike. Prints wall and CPU time (user + system of the process tree) and each build's
ratio to the venv's own; writes benchmarks/results/interpreter.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from statistics import median

from benchmarks.common import timed, write_result
from benchmarks.pipeline import timed_run

DATA_RUN = ["ingest.max_documents=8", "pipeline=data"]
STARTUP = "import zenml, mlflow"
#: What a build says of itself: its version, and whether its interpreter is a shared libpython (position-
#: independent code, calls between its functions through the PLT) or linked into the executable.
DESCRIBE = (
    "import json, platform; "
    "print(json.dumps({'version': platform.python_version(), "
    "'shared_libpython': 'libpython' in open('/proc/self/maps').read()}))"
)


def candidates(extra: list[str]) -> list[str]:
    """The venv's base interpreter first, then other Python builds of the same minor version, by real path."""
    found = [os.path.realpath(sys._base_executable)]
    for name in [*extra, "/usr/bin/python3.11", shutil.which("python3.11", path=_path_without_venv())]:
        build = _build_of(name) if name and os.access(name, os.X_OK) else None
        if build and build not in found:
            found.append(build)
    return found


def _path_without_venv() -> str:
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix))


def _build_of(python: str) -> str | None:
    """The real executable behind ``python`` (a shim, a link), if it is of this interpreter's minor version."""
    probe = subprocess.run(
        [python, "-c", "import os, sys; print(sys.version_info[:2], os.path.realpath(sys._base_executable))"],
        capture_output=True,
        text=True,
    )
    version, _, build = probe.stdout.strip().partition(") ")
    return build if probe.returncode == 0 and f"{version})" == str(sys.version_info[:2]) else None


def borrowing_venv(python: str, folder: Path) -> str:
    """A venv of ``python`` in ``folder`` that imports this venv's packages; returns its interpreter."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(folder)], check=True)
    site = next(folder.glob("lib/python3.*/site-packages"))
    ours = sysconfig.get_paths()["purelib"]
    (site / "_borrowed_site.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return str(folder / "bin" / "python")


def _startup(python: str) -> tuple[float, float]:
    """Wall and CPU seconds of ``STARTUP`` in a fresh ``python`` process."""
    proc, wall, cpu = timed([python, "-c", STARTUP])
    if proc.returncode != 0:
        raise SystemExit(f"{python}: {STARTUP} failed:\n{proc.stderr[-3000:]}")
    return wall, cpu


def _measure(builds: list[str], repeats: int) -> dict[str, dict]:
    """Each build's description and its median wall and CPU seconds per measure, runs alternating."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        venvs = {b: borrowing_venv(b, root / f"venv{i}") for i, b in enumerate(builds)}
        about = {
            b: json.loads(subprocess.run([v, "-c", DESCRIBE], check=True, capture_output=True, text=True).stdout)
            for b, v in venvs.items()
        }
        home = str(root / "home")
        timed_run(home, DATA_RUN)  # fills the cache: every timed run below has nothing to do
        for python in venvs.values():  # each build writes its bytecode caches once, untimed
            _startup(python)
        samples: dict[str, dict[str, list]] = {b: {"startup": [], "no_change": []} for b in builds}
        for _ in range(repeats):
            for build, python in venvs.items():
                samples[build]["startup"].append(_startup(python))
                run = timed_run(home, DATA_RUN, python=python)
                samples[build]["no_change"].append((run["wall_s"], run["cpu_s"]))
    results = {}
    for build in builds:
        results[build] = {"about": about[build]}
        for measure, runs in samples[build].items():
            wall, cpu = median(w for w, _ in runs), median(c for _, c in runs)
            results[build][measure] = {"median_wall_s": round(wall, 2), "median_cpu_s": round(cpu, 2)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="runs of each measure per build (alternating)")
    parser.add_argument("--python", action="append", default=[], help="another interpreter to compare (repeatable)")
    args = parser.parse_args()
    builds = candidates(args.python)
    if len(builds) < 2:
        print(f"only one build of this Python version here ({builds[0]}): nothing to compare it with")
    results = _measure(builds, args.repeats)
    base = results[builds[0]]
    for build, r in results.items():
        for measure in ("startup", "no_change"):
            r[measure]["wall_ratio"] = round(r[measure]["median_wall_s"] / base[measure]["median_wall_s"], 2)
            r[measure]["cpu_ratio"] = round(r[measure]["median_cpu_s"] / base[measure]["median_cpu_s"], 2)
        print(f"{build} ({_describe(r['about'])})")
        for measure, what in (("startup", STARTUP), ("no_change", "no-change data run")):
            m = r[measure]
            print(
                f"    {what:<22} {m['median_wall_s']:6.2f} s wall, {m['median_cpu_s']:6.2f} s CPU (median of "
                f"{args.repeats}): {m['wall_ratio']}x wall, {m['cpu_ratio']}x CPU"
            )
    load = os.getloadavg()[0]
    payload = {"venv_interpreter": builds[0], "repeats": args.repeats, "builds": results, "load_average_1min": load}
    print(f"wrote {write_result('interpreter', payload)}")


def _describe(about: dict) -> str:
    return f"{about['version']}, {'shared' if about['shared_libpython'] else 'static'} libpython"


def report_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """BENCHMARKS.md rows (what, command, baseline, result) of a result of this benchmark."""
    base = r["builds"][r["venv_interpreter"]]
    rows = []
    for build, x in r["builds"].items():
        if build == r["venv_interpreter"]:
            continue
        rows.append(
            (
                f"Interpreter build: {build} ({_describe(x['about'])}) running the project venv's packages",
                "python -m benchmarks.interpreter",
                f"the venv's {r['venv_interpreter']}: `{STARTUP}` {base['startup']['median_wall_s']} s, no-change "
                f"data run {base['no_change']['median_wall_s']} s",
                f"`{STARTUP}` {x['startup']['median_wall_s']} s: **{x['startup']['wall_ratio']}x**; no-change data "
                f"run {x['no_change']['median_wall_s']} s: **{x['no_change']['wall_ratio']}x** wall, "
                f"{x['no_change']['cpu_ratio']}x CPU",
            )
        )
    return rows


if __name__ == "__main__":
    main()
