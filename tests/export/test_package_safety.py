"""open_package: hashes checked before loading; unsafe zips and pickle files refused, never executed."""

import json
import os
import pickle
import shutil
import stat
import zipfile

import pytest

from deepsynth.export import PackageError, export_adapter, open_package
from deepsynth.inference import Summarizer
from deepsynth.integrity import sha256_file
from deepsynth.package import create_zip


class Payload:
    """Unpickling this creates a marker file: proof that a pickle was executed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def package(trained_adapter, tmp_path):
    return export_adapter(trained_adapter, tmp_path / "pkg", create_package=False).output_dir


def _relist(directory, rel):
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"][rel] = {"sha256": sha256_file(directory / rel), "size": (directory / rel).stat().st_size}
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_intact_package_opens(package):
    assert open_package(package) == package


def test_modified_file_is_detected(package):
    config = package / "adapter_config.json"
    config.write_text(config.read_text().replace('"r": 8', '"r": 9'))
    with pytest.raises(PackageError, match="adapter_config.json does not match its sha256"):
        open_package(package)


def test_unlisted_and_missing_files_are_refused(package):
    (package / "extra.json").write_text("{}")
    with pytest.raises(PackageError, match="extra.json is not listed"):
        open_package(package)
    (package / "extra.json").unlink()
    (package / "README.md").unlink()
    with pytest.raises(PackageError, match="README.md is listed .* but missing"):
        open_package(package)


@pytest.mark.parametrize("name", ["adapter_model.bin", "payload.pkl", "text_encoder/weights/pytorch_model.bin"])
def test_planted_pickle_is_refused_and_never_executed(package, tmp_path, name, shared_home):
    marker = tmp_path / "pwned"
    target = package / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(pickle.dumps(Payload(marker)))
    _relist(package, name)  # even with a matching hash, the file type is refused
    with pytest.raises(PackageError, match="not an allowed file type"):
        open_package(package)
    with pytest.raises(PackageError):
        Summarizer.load(package, home=shared_home)
    zipped = create_zip(package, tmp_path / "planted.zip")
    with pytest.raises(PackageError, match="not an allowed file type"):
        open_package(zipped)
    assert not marker.exists()


def test_pickle_disguised_as_safetensors_is_not_executed(package, tmp_path, shared_home):
    marker = tmp_path / "pwned"
    (package / "adapter_model.safetensors").write_bytes(pickle.dumps(Payload(marker)))
    _relist(package, "adapter_model.safetensors")
    with pytest.raises(PackageError, match="is not the adapter_sha256"):  # refused before safetensors reads it
        Summarizer.load(package, home=shared_home)
    assert not marker.exists()


def _zip_with(path, name, data=b"x", mode=None):
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        archive.writestr(info, data)
    return path


@pytest.mark.parametrize(
    "name, mode, message",
    [
        ("/etc/evil.json", None, "absolute"),
        ("../evil.json", None, r"'\.\.'"),
        ("a/../../evil.json", None, r"'\.\.'"),
        ("link.json", stat.S_IFLNK | 0o777, "links"),
    ],
)
def test_unsafe_zip_entries_are_refused(tmp_path, name, mode, message):
    archive = _zip_with(tmp_path / "bad.zip", name, b"/etc/passwd", mode)
    dest = tmp_path / "dest"
    with pytest.raises(PackageError, match=message):
        open_package(archive, dest=dest)
    assert not (tmp_path / "evil.json").exists() and not dest.exists()


def test_uncompressed_size_limit(package, tmp_path):
    zipped = create_zip(package, tmp_path / "ok.zip")
    with pytest.raises(PackageError, match="exceeds the limit"):
        open_package(zipped, max_total_bytes=1000)
    opened = open_package(zipped, dest=tmp_path / "opened")
    assert sorted(p.name for p in opened.iterdir()) == sorted(p.name for p in package.iterdir())
    shutil.rmtree(opened)
