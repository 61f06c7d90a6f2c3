"""Nothing unverified is loaded: no manifest field exempts a file, the weights must be the adapter the
manifest names, a folder without a manifest needs an explicit opt-in, and ambiguous manifests or zips
(duplicate keys, duplicate entries) are refused while an ordinary ``zipfile`` zip opens."""

import json
import warnings
import zipfile

import pytest
from safetensors.torch import load_file, save_file

from deepsynth.export import PackageError, export_adapter, open_package
from deepsynth.inference import Summarizer
from deepsynth.integrity import sha256_file
from deepsynth_cli import main


@pytest.fixture
def package(trained_adapter, tmp_path):
    return export_adapter(trained_adapter, tmp_path / "pkg", create_package=False).output_dir


def read_manifest(directory):
    return json.loads((directory / "manifest.json").read_text())


def write_manifest(directory, manifest):
    (directory / "manifest.json").write_text(json.dumps(manifest))


def change_weights(directory):
    """Replace the adapter with a valid safetensors file of other values (lora_B halved)."""
    path = directory / "adapter_model.safetensors"
    tensors = load_file(str(path))
    save_file({k: v * 0.5 if "lora_B" in k else v for k, v in tensors.items()}, str(path))


def rehash(directory, manifest=None):
    """The attacker's step: every listed file's size and sha256 recomputed into the manifest."""
    manifest = manifest or read_manifest(directory)
    for rel in manifest["files"]:
        manifest["files"][rel] = {"sha256": sha256_file(directory / rel), "size": (directory / rel).stat().st_size}
    write_manifest(directory, manifest)
    return manifest


def test_changed_weights_with_a_rehashed_manifest_are_refused(package):
    change_weights(package)
    rehash(package)
    with pytest.raises(PackageError, match="adapter_model.safetensors .* not the adapter_sha256"):
        open_package(package)


@pytest.mark.parametrize("rel", ["adapter_model.safetensors", "trainer_config.json"])
def test_package_name_cannot_exempt_a_loaded_file(package, rel):
    manifest = read_manifest(package)
    del manifest["files"][rel]
    manifest["package_name"] = rel
    write_manifest(package, manifest)
    (package / rel).write_bytes((package / rel).read_bytes() + b" ")
    with pytest.raises(PackageError, match="package_name"):
        open_package(package)


def test_merged_flag_does_not_exempt_the_adapter_weights(package):
    change_weights(package)
    manifest = read_manifest(package)
    manifest["merged"] = True
    rehash(package, manifest)
    with pytest.raises(PackageError, match="not the adapter_sha256"):
        open_package(package)


@pytest.mark.parametrize("where", ["top level", "files"])
def test_duplicate_manifest_keys_are_refused(package, where):
    manifest = read_manifest(package)
    text = json.dumps(manifest)
    if where == "top level":
        text = text[:-1] + f', "adapter_sha256": "{manifest["adapter_sha256"]}"}}'
    else:
        entry = json.dumps(manifest["files"]["README.md"])
        text = text.replace('"files": {', f'"files": {{"README.md": {entry}, ', 1)
    (package / "manifest.json").write_text(text)
    with pytest.raises(PackageError, match="duplicate key 'adapter_sha256'|duplicate key 'README.md'"):
        open_package(package)


@pytest.mark.parametrize(
    "extra",
    [
        ("adapter_model.safetensors", b"other bytes"),
        ("./README.md", b"# another card"),
        ("README.md/inner.json", b"{}"),
    ],
)
def test_duplicate_zip_entries_are_refused(package, tmp_path, extra):
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as out, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns "Duplicate name"
        for path in sorted(p for p in package.rglob("*") if p.is_file()):
            out.write(path, path.relative_to(package).as_posix())
        out.writestr(*extra)
    with pytest.raises(PackageError, match="duplicate entry|both a file and a folder"):
        open_package(archive, dest=tmp_path / "dest")


@pytest.mark.parametrize("how", ["writestr", "write"])
def test_ordinary_zipfile_zip_is_accepted(package, tmp_path, how):
    archive = tmp_path / "plain.zip"
    files = sorted(p for p in package.rglob("*") if p.is_file())
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for path in files:
            rel = path.relative_to(package).as_posix()
            out.writestr(rel, path.read_bytes()) if how == "writestr" else out.write(path, rel)
    opened = open_package(archive, dest=tmp_path / "opened")
    assert sorted(p.relative_to(opened) for p in opened.rglob("*") if p.is_file()) == sorted(
        p.relative_to(package) for p in files
    )


def test_folder_without_manifest_needs_an_explicit_unverified_load(trained_adapter, shared_home):
    with pytest.raises(PackageError, match="no manifest.json.*allow_unverified"):
        Summarizer.load(trained_adapter, home=shared_home)
    summarizer = Summarizer.load(trained_adapter, home=shared_home, allow_unverified=True)
    try:
        assert summarizer.loaded.adapter_dir == trained_adapter
    finally:
        summarizer.close()


@pytest.mark.slow
def test_summarize_command_refuses_an_unverified_folder_without_the_flag(
    trained_adapter, shared_home, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DEEPSYNTH_HOME", str(shared_home))
    text = tmp_path / "doc.txt"
    text.write_text("The museum opens a new wing in June. It shows modern art.")
    args = ["summarize", "--model", str(trained_adapter), str(text), "--max-new-tokens", "4", "--json"]
    assert main(args) == 1
    captured = capsys.readouterr()
    error = json.loads(captured.out)  # --json: the one document on stdout is the error
    assert error["exit_code"] == 1 and "no manifest.json" in error["error"] and "--allow-unverified" in error["error"]
    assert "Traceback" not in captured.err
    assert main([*args, "--allow-unverified"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == [str(text)]
