"""A registered package changed in the artifact store after registration is refused by ``models:/`` loads
and downloads, even when the attacker recomputed every hash in the manifest: the registry version's tags
(``adapter_sha256``, ``manifest_sha256``) are what the package must match."""

import json

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
