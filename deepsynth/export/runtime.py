"""What an export package needs to run anywhere: pinned public requirements and the library itself.

The package carries the ``deepsynth`` library it was exported with, as source (``deepsynth/`` beside
``inference.py``, hashed in the manifest like every other file), so ``requirements.txt`` names public
packages only: the project's core dependencies (``pyproject.toml``'s ``dependencies``, read from the
installed distribution's metadata), pinned to the versions installed at export time. No pipeline
stack (ZenML, MLflow, great-expectations...) is among them.
"""

from __future__ import annotations

import os
import shutil
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from deepsynth.errors import DeepSynthError

DISTRIBUTION = "deepsynth-pipelines"
LIBRARY = "deepsynth"
REQUIREMENTS_HEADER = """\
# Inference requirements of this DeepSynth export package: public packages only (the deepsynth
# library it runs is carried in ./deepsynth). Install torch first, the build you want, then the rest:
#   pip install torch=={torch}    # CPU-only machine: add --index-url https://download.pytorch.org/whl/cpu
#   pip install -r requirements.txt
"""


def core_requirement_names() -> list[str]:
    """Names of the project's core dependencies (those outside any extra), from the installed metadata.

    Raises:
        DeepSynthError: The project is not installed (``pip install -e .``), so its core is unknown.
    """
    try:
        requires = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raise DeepSynthError(
            f"{DISTRIBUTION} is not installed (pip install -e .): its core requirements, "
            "which an export package pins, are unknown"
        ) from None
    return [req.name for req in map(Requirement, requires) if req.marker is None or "extra" not in str(req.marker)]


def public_version(name: str) -> str:
    """The installed version of ``name`` without a local label (``2.13.0+cpu`` → ``2.13.0``)."""
    return Version(metadata.version(name)).public


def requirements(extra: tuple[str, ...] = ()) -> str:
    """``requirements.txt``: every core dependency and ``extra`` pinned to its installed public version."""
    names = [*core_requirement_names(), *extra]
    return REQUIREMENTS_HEADER.format(torch=public_version("torch")) + "".join(
        f"{name}=={public_version(name)}\n" for name in names
    )


def copy_library(dest: str | os.PathLike) -> Path:
    """Copy the running ``deepsynth`` library's source (``*.py`` only) to ``dest/deepsynth``."""
    import deepsynth

    source, target = Path(deepsynth.__file__).parent, Path(dest) / LIBRARY
    for path in sorted(source.rglob("*.py")):
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out)
    return target
