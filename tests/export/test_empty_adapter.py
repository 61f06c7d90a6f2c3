"""An adapter with zero tensors is refused (issue 27 item 15): the tensor-by-tensor check would pass with nothing
to compare and the base model would answer as if adapted. Export, verification (so every load: summarize, serve,
``models:/``) and registration refuse it."""

import json
import shutil

import pytest
from safetensors.torch import save_file

from deepsynth.errors import DeepSynthError
from deepsynth.export import PackageError, export_adapter
from deepsynth.inference import Summarizer
from deepsynth.integrity import sha256_file
from deepsynth.package import read_manifest, verify_directory, write_manifest
from deepsynth.registry import register_package


@pytest.fixture(scope="module")
def export(trained_adapter, tmp_path_factory):
    return export_adapter(trained_adapter, tmp_path_factory.mktemp("empty") / "pkg", create_package=False)


@pytest.fixture
def emptied(export, tmp_path):
    """The package with an empty (valid, zero-tensor) adapter and a manifest re-hashed to name it."""
    folder = tmp_path / "empty"
    shutil.copytree(export.output_dir, folder)
    save_file({}, str(folder / "adapter_model.safetensors"))
    manifest = read_manifest(folder)
    extra = {k: v for k, v in manifest.items() if k not in ("format", "version", "files")}
    write_manifest(folder, {**extra, "adapter_sha256": sha256_file(folder / "adapter_model.safetensors")})
    return folder


def test_an_empty_adapter_is_refused_at_verification_load_and_registration(emptied, shared_home, tmp_path):
    with pytest.raises(PackageError, match="holds no tensors"):
        verify_directory(emptied)
    with pytest.raises(PackageError, match="holds no tensors"):
        Summarizer.load(emptied, home=shared_home)
    with pytest.raises(PackageError, match="holds no tensors"):
        register_package(emptied, "empty-adapter")


def test_an_empty_adapter_is_not_exported(trained_adapter, tmp_path):
    trainer_output = tmp_path / "trainer"
    shutil.copytree(trained_adapter, trainer_output)
    save_file({}, str(trainer_output / "adapter_model.safetensors"))
    with pytest.raises(DeepSynthError, match="holds no tensors"):
        export_adapter(trainer_output, tmp_path / "out", create_package=False)
    assert not (tmp_path / "out").exists()


def test_the_untouched_package_still_verifies(export):
    assert verify_directory(export.output_dir)["adapter_sha256"] == export.adapter_sha256
    assert json.loads((export.output_dir / "adapter_config.json").read_text())["peft_type"] == "LORA"
