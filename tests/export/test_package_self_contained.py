"""An export package is self-contained both ways (issue 27 items 9 and 22): it carries no path of the training
machine (trainer_config.json, adapter_config.json, text_encoder.json), and a verified package never loads weights
from a path it names — only from itself or a profile/hub name."""

import json
import shutil

import pytest

from deepsynth.export import PackageError, export_adapter
from deepsynth.export.portable import is_host_path
from deepsynth.inference import GenerationConfig, Summarizer
from deepsynth.models.text_encoders import (
    BUNDLED_MINILM,
    bundled_minilm_path,
    encoder_weights_source,
    logical_encoder_source,
)
from deepsynth.package import read_manifest, verify_directory, write_manifest

TEXT = "The museum opens a new wing in June. It shows modern art. Tickets go on sale next week."


@pytest.fixture(scope="module")
def export(trained_adapter, tmp_path_factory):
    return export_adapter(trained_adapter, tmp_path_factory.mktemp("portable") / "pkg", create_package=False)


def walk(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)
    else:
        yield value


def test_an_export_embeds_no_host_path_and_still_loads(export, trained_adapter, shared_home):
    package = export.output_dir
    trainer = json.loads((trained_adapter / "trainer_config.json").read_text())
    host = [trainer["output_dir"], trainer["deepsynth_home"], str(trained_adapter)]
    assert all(host) and is_host_path(trainer["output_dir"])  # the trainer output does hold them
    for name in ("trainer_config.json", "adapter_config.json"):
        values = list(walk(json.loads((package / name).read_text())))
        assert not [v for v in values if is_host_path(v)], name
    for path in package.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".txt"):
            assert not [h for h in host if h in path.read_text()], path
    exported = json.loads((package / "trainer_config.json").read_text())
    assert exported["model_name"] == "tiny" and exported["output_dir"] is None
    assert json.loads((package / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny"
    gen = GenerationConfig(max_new_tokens=6)
    from_package = Summarizer.load(package, home=shared_home, generation=gen).summarize_text(TEXT)
    from_trainer = Summarizer.load(trained_adapter, home=shared_home, generation=gen, allow_unverified=True)
    assert from_package == from_trainer.summarize_text(TEXT) and from_package


def tampered(export, tmp_path, edit):
    """A copy of the package with ``edit(folder)`` applied and the manifest re-hashed (the attacker's step)."""
    folder = tmp_path / "copy"
    shutil.copytree(export.output_dir, folder)
    edit(folder)
    manifest = read_manifest(folder)
    write_manifest(folder, {k: v for k, v in manifest.items() if k not in ("format", "version", "files")})
    return folder


def set_json(rel, **values):
    def edit(folder):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(path.read_text()) if path.is_file() else {}
        path.write_text(json.dumps({**old, **values}))

    return edit


def encoder_meta(source, included=False):
    meta = {"type": "bert", "source": source, "max_tokens": 64, "pooling": "mean", "encoder_hidden": 384}
    return set_json("text_encoder/text_encoder.json", **meta, out_dim=384, projection=False, weights_included=included)


def both(*edits):
    def edit(folder):
        for e in edits:
            e(folder)

    return edit


REFUSED = {
    "absolute base": set_json("trainer_config.json", model_name="/some/base"),
    "relative base": set_json("trainer_config.json", model_name="../base"),
    "home base": set_json("trainer_config.json", model_name="~/base"),
    "adapter_config fallback": both(
        set_json("trainer_config.json", model_name=None),
        set_json("adapter_config.json", base_model_name_or_path="/some/base"),
    ),
    "encoder from a folder": encoder_meta("/some/dir"),
}
ALLOWED = {
    "profile": set_json("trainer_config.json", model_name="tiny"),
    "hub id": set_json("trainer_config.json", model_name="deepseek-ai/DeepSeek-OCR"),
    "hub encoder": encoder_meta("Qwen/Qwen3-Embedding-0.6B"),
    "bundled encoder": encoder_meta(BUNDLED_MINILM),
    "encoder with its weights": encoder_meta("/training/machine/encoder", included=True),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_package_naming_weights_outside_itself_is_refused_at_verification(export, tmp_path, case):
    folder = tampered(export, tmp_path, REFUSED[case])
    with pytest.raises(PackageError, match="a path outside the package") as refused:
        verify_directory(folder)
    assert str(folder) in str(refused.value)


@pytest.mark.parametrize("case", ALLOWED)
def test_profile_and_hub_names_stay_allowed(export, tmp_path, case):
    verify_directory(tampered(export, tmp_path, ALLOWED[case]))


def test_the_bundled_encoder_is_written_by_name_and_loaded_from_the_installed_bundle():
    path = str(bundled_minilm_path())
    assert logical_encoder_source(path) == BUNDLED_MINILM and encoder_weights_source(BUNDLED_MINILM) == path
    assert logical_encoder_source("/some/dir") == "/some/dir" and encoder_weights_source("x/y") == "x/y"
