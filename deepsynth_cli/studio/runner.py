"""The process that runs one Studio job: ``python -m deepsynth_cli.studio.runner JOB_DIR``.

The Studio starts it in a session of its own, so the job outlives the browser and the Studio. It runs the
job's command with stdout to ``JOB_DIR/stdout`` and stderr to ``JOB_DIR/log``, ignores SIGTERM itself (a
cancel signals the whole session: the command takes the SIGTERM path and exits 143) and writes the exit
code to ``JOB_DIR/exit_code`` when the command ends, which is how a restarted Studio learns the outcome.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path


def main(job_dir: str) -> int:
    """Run the command in ``JOB_DIR/job.json`` and record its exit code."""
    folder = Path(job_dir)
    job = json.loads((folder / "job.json").read_text())
    with open(folder / "stdout", "wb") as out, open(folder / "log", "ab") as log:
        child = subprocess.Popen(job["argv"], stdout=out, stderr=log, cwd=job["cwd"], env={**os.environ, **job["env"]})
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # after the start: the command keeps the default handler
        code = child.wait()
    if code < 0:  # killed by a signal: report it as a shell does (SIGTERM: 143)
        code = 128 - code
    temporary = folder / "exit_code.tmp"
    temporary.write_text(str(code))
    temporary.replace(folder / "exit_code")
    return 0


if __name__ == "__main__":
    from deepsynth.process_exit import skip_final_collection

    skip_final_collection()
    sys.exit(main(sys.argv[1]))
