"""Fresh virtualenvs made from a requirements file, as a user of an exported package or registered model would.

torch==2.13.0 is installed first (a plain torch requirement would pull a multi-GB CUDA build); the
pip cache is used; nothing is loaded from a hub. Installs skip compiling bytecode for every file (3x
faster for torch): the environment's first imports compile only what they use.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(cmd: list, **kwargs) -> str:
    """Run ``cmd``; its stdout, or an assertion error that shows the end of its stderr."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd}: {proc.stderr[-3000:]}"
    return proc.stdout


def fresh_python(venv: Path, requirements: Path) -> Path:
    """A new virtualenv at ``venv`` with torch==2.13.0, then ``requirements``; its python."""
    run([sys.executable, "-m", "venv", venv], timeout=120)
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--no-compile", "torch==2.13.0"], timeout=600)
    run([python, "-m", "pip", "install", "--quiet", "--no-compile", "-r", requirements], timeout=900)
    return python
