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


def _zip_of(package, path, extra=(), replace=None):
    """``package`` zipped as ``create_zip`` does, plus ``extra`` (name, bytes) entries, ``replace`` {name: bytes}."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in package.rglob("*") if p.is_file()):
            rel = file.relative_to(package).as_posix()
            archive.writestr(rel, (replace or {}).get(rel, file.read_bytes()))
        for name, data in extra:
            archive.writestr(name, data)
    return path


def test_a_zip_bomb_entry_the_manifest_does_not_list_is_refused_before_anything_is_written(package, tmp_path):
    """Issue 27 item 10: 256 MiB of zeros (a few hundred KB zipped) beside a valid package: refused from the
    manifest read first, nothing extracted."""
    bomb = _zip_of(package, tmp_path / "bomb.zip", extra=[("weights/big.json", bytes(256 * 1024**2))])
    assert bomb.stat().st_size < 8 * 1024**2  # the package and the deflated zeros
    dest = tmp_path / "dest"
    with pytest.raises(
        PackageError, match=r"weights/big\.json is not listed in manifest\.json \(nothing was extracted"
    ):
        open_package(bomb, dest=dest)
    assert not dest.exists()


def test_an_entry_declaring_more_than_its_listed_size_is_refused_before_extraction(package, tmp_path):
    grown = _zip_of(package, tmp_path / "grown.zip", replace={"README.md": b"#" * (64 * 1024**2)})
    dest = tmp_path / "dest"
    with pytest.raises(PackageError, match=r"README\.md declares 67108864 bytes, manifest\.json lists \d+"):
        open_package(grown, dest=dest)
    assert not dest.exists()


def test_a_zip_without_a_manifest_is_refused_before_extraction(tmp_path):
    archive = _zip_with(tmp_path / "plain.zip", "adapter_config.json", b"{}")
    with pytest.raises(PackageError, match="no manifest.json in the zip"):
        open_package(archive, dest=tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_the_default_cap_is_sane():
    from deepsynth.package import DEFAULT_MAX_TOTAL_BYTES, MAX_MANIFEST_BYTES

    assert 13.2e9 < DEFAULT_MAX_TOTAL_BYTES <= 16 * 1024**3  # a merged full-size model in float32 fits, no more
    assert MAX_MANIFEST_BYTES <= 16 * 1024**2
