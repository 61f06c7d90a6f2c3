"""A registered package changed in the artifact store after registration is refused by ``models:/`` loads
and downloads, even when the attacker recomputed every hash in the manifest: the registry version's tags
(``adapter_sha256``, ``manifest_sha256``) are what the package must match."""

import json
from pathlib import Path

import mlflow
import pytest
from safetensors.torch import load_file, save_file
from support.adapters import mlflow_store_at

from deepsynth.export import PackageError, export_adapter
from deepsynth.inference import GenerationConfig, Summarizer
from deepsynth.integrity import sha256_file
from deepsynth.registry import ModelRef, download, register_package, show

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-integrity")
    with mlflow_store_at(root, "integrity"):
        yield root


@pytest.fixture(scope="module")
def export(trained_adapter, tmp_path_factory):
    return export_adapter(trained_adapter, tmp_path_factory.mktemp("integrity") / "pkg", create_package=False)


def stored_package(store, name, version):
    """The package folder as it lies in the artifact store (what an attacker with disk access edits)."""
    model_id = mlflow.MlflowClient().get_model_version(name, version).source.removeprefix("models:/")
    (manifest,) = [p for p in (store / "art").rglob("manifest.json") if model_id in p.parts]
    return manifest.parent


def change_weights(package):
    path = package / "adapter_model.safetensors"
    tensors = load_file(str(path))
    save_file({k: v * 0.5 if "lora_B" in k else v for k, v in tensors.items()}, str(path))
    return {"adapter_sha256": sha256_file(path)}


def change_trainer_config(package):
    path = package / "trainer_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "instruction_prompt": "Say something else:"}))
    return {}


def rehash(package, **top):
    manifest = json.loads((package / "manifest.json").read_text())
    for rel in manifest["files"]:
        manifest["files"][rel] = {"sha256": sha256_file(package / rel), "size": (package / rel).stat().st_size}
    (package / "manifest.json").write_text(json.dumps({**manifest, **top}, indent=2, sort_keys=True))


@pytest.mark.parametrize("tamper", [change_weights, change_trainer_config])
def test_a_package_changed_after_registration_is_refused(store, export, shared_home, tmp_path, tamper):
    name = f"integrity-{tamper.__name__.replace('_', '-')}"
    version = register_package(export.output_dir, name)["version"]
    assert download(f"{name}/{version}", tmp_path / "before")["adapter_sha256"] == export.adapter_sha256

    package = stored_package(store, name, version)
    rehash(package, **tamper(package))
    with pytest.raises(PackageError, match="registry"):
        Summarizer.load(
            ModelRef.parse(f"models:/{name}/{version}"), home=shared_home, generation=GenerationConfig(max_new_tokens=4)
        )
    with pytest.raises(PackageError, match="registry"):
        download(f"{name}@challenger", tmp_path / "after")
    assert not (tmp_path / "after").exists() or not any((tmp_path / "after").iterdir())
    assert show(f"{name}/{version}")["tags"]["adapter_sha256"] == export.adapter_sha256


# Run in a fresh interpreter (the import order of a real ``mlflow.pyfunc.load_model`` call): load each
# reference, print what happened; then whether any of the stored package's code was imported.
LOAD_WITH_MLFLOW = """
import json, sys
import mlflow, pandas
out = {}
for uri in sys.argv[1:]:
    try:
        out[uri] = mlflow.pyfunc.load_model(uri).predict(pandas.DataFrame({"text": ["The museum opens in June."]}))
    except Exception as exc:
        out[uri] = f"{type(exc).__name__}: {exc}"
import deepsynth
out["deepsynth"] = deepsynth.__file__
print(json.dumps(out))
"""


def change_carried_code(package, marker):
    """Append code to the package's copy of the library (what an older registration's MLflow would import)."""
    for rel in ("deepsynth/__init__.py", "deepsynth/registry/pyfunc_loader.py", "deepsynth/registry/fetch.py"):
        with open(package / rel, "a") as fh:
            fh.write(f"\nopen({str(marker)!r}, 'a').write({rel!r})\n")
    return {}


def test_mlflows_own_loader_verifies_against_the_registry_before_importing_anything(store, export, tmp_path):
    """``mlflow.pyfunc.load_model("models:/…")``: a re-hashed package with changed weights, or with code appended
    to its carried library, is refused; the injected code never runs; an untouched version loads and predicts
    with the installed library (no code is logged with a version)."""
    import os
    import subprocess
    import sys

    marker = tmp_path / "injected-code-ran"
    versions = {}
    for case in ("good", "weights", "code"):
        name = f"mlflow-loader-{case}"
        versions[case] = f"models:/{name}/{register_package(export.output_dir, name)['version']}"
        package = stored_package(store, name, "1")
        assert not (package.parent.parent / "code").exists()  # nothing MLflow would put on sys.path
        if case == "weights":
            rehash(package, **change_weights(package))
        elif case == "code":
            rehash(package, **change_carried_code(package, marker))
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
        "MLFLOW_REGISTRY_URI": mlflow.get_registry_uri(),
    }
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_WITH_MLFLOW, versions["weights"], versions["code"], versions["good"]],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (
        got[versions["weights"]].startswith("PackageError")
        and "no version in the configured registry" in (got[versions["weights"]])
    )
    assert got[versions["code"]].startswith("PackageError") and "registry recorded" in got[versions["code"]]
    assert isinstance(got[versions["good"]], list) and len(got[versions["good"]]) == 1
    assert not marker.exists()
    assert Path(got["deepsynth"]).resolve().parent == Path(__import__("deepsynth").__file__).resolve().parent
