"""MLflow's loader of a registered DeepSynth version: the package is checked against the registry first.

A version is logged with this module as its pyfunc ``loader_module`` and the export package as its
data; no code travels with it (no ``code_paths``, no models-from-code file). So
``mlflow.pyfunc.load_model`` and ``mlflow models serve`` import this module from the *installed*
``deepsynth`` — nothing of the stored package is on ``sys.path`` — and :func:`_load_pyfunc` checks
the package against its manifest and against the registry version's ``adapter_sha256`` and
``manifest_sha256`` tags before any weight is read. The package's own copy of the library
(``deepsynth/``, for its standalone ``inference.py``) is hashed like any file and never imported here.

MLflow itself reads the version's ``MLmodel`` before this module runs: whoever can rewrite that file in
the artifact store can name another loader, which no check inside a package can prevent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from deepsynth.package import PackageError, verify_directory
from deepsynth.registry.fetch import verify_registered
from deepsynth.registry.versions import ADAPTER_SHA_TAG, client

#: The loaded version's ``MLmodel``, two levels above the package (``<model>/data/package``).
MLMODEL = "MLmodel"
SHA256 = re.compile(r"[0-9a-f]{64}")


def _logged_model_id(package_dir: Path) -> str:
    """The ``model_id`` MLflow wrote into the version's ``MLmodel`` (the registry's ``source`` names it)."""
    from deepsynth.yaml_bounds import read_yaml

    mlmodel = package_dir.parent.parent / MLMODEL
    model_id = str(read_yaml(mlmodel).get("model_id") or "")
    if not model_id:
        raise PackageError(f"{mlmodel}: names no model_id, so its registry version cannot be found to verify it")
    return model_id


def registered_version(package_dir: str | Path) -> Any:
    """The registry version the package at ``package_dir`` was registered as, after checking it matches.

    The version is the one whose ``source`` is the logged model that holds this package and whose
    ``adapter_sha256`` tag is the package's; :func:`deepsynth.registry.fetch.verify_registered` then
    checks every file against the manifest and the manifest against the version's ``manifest_sha256``.

    Raises:
        PackageError: The package fails its manifest, or no registry version records it as it is now.
    """
    package_dir = Path(package_dir)
    manifest = verify_directory(package_dir)
    sha = str(manifest.get("adapter_sha256"))
    if not SHA256.fullmatch(sha):
        raise PackageError(f"{package_dir}: the manifest's adapter_sha256 is not a sha256")
    source = f"models:/{_logged_model_id(package_dir)}"
    mlflow_client = client()
    found = [
        mv for mv in mlflow_client.search_model_versions(f"tags.{ADAPTER_SHA_TAG} = '{sha}'") if mv.source == source
    ]
    if not found:
        raise PackageError(
            f"{package_dir}: no version in the configured registry records this package "
            f"(logged model {source}, adapter {sha}): it was changed after registration, or the registry "
            "it was registered in is not the one configured; nothing was loaded"
        )
    mv = mlflow_client.get_model_version(found[0].name, found[0].version)  # the search leaves tags/aliases thin
    verify_registered(package_dir, mv)
    return mv


class RegisteredSummarizer:
    """What MLflow's pyfunc wraps: ``predict`` summarizes the texts of a DataFrame, a list or one string."""

    def __init__(self, summarizer: Any) -> None:
        self.summarizer = summarizer

    def predict(self, model_input: Any, params: dict | None = None) -> list[str]:
        """One summary per text (``text`` column of a DataFrame, else its first; a list; one string)."""
        from deepsynth.registry.pyfunc_model import texts_of

        return self.summarizer.summarize_texts(texts_of(model_input))


def _load_pyfunc(data_path: str, model_config: Any = None) -> RegisteredSummarizer:
    """MLflow's entry point: verify the package at ``data_path`` against the registry, then load it.

    Raises:
        PackageError: The package is not, byte for byte, the one the registry recorded (nothing is loaded).
    """
    from deepsynth.inference.summarizer import Summarizer
    from deepsynth.paths import inference_cache_dir

    registered_version(data_path)
    return RegisteredSummarizer(Summarizer.load(Path(data_path), home=inference_cache_dir()))
