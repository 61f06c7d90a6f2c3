"""``ModelRef`` parsing and the checks that need no registry: every accepted form, the one-line errors,
and a ``models:/`` string refused by the inference layer (which sits below the registry)."""

from __future__ import annotations

import pytest

from deepsynth.errors import ConfigError
from deepsynth.registry.catalog import check_ref
from deepsynth.registry.refs import ModelRef, parse_ref


@pytest.mark.parametrize(
    "text, expected",
    [
        ("models:/a-b@champion", ("a-b", None, "champion", "models:/a-b@champion")),
        ("models:/a-b/3", ("a-b", "3", None, "models:/a-b/3")),
        ("a-b@challenger", ("a-b", None, "challenger", "models:/a-b@challenger")),
        ("a-b/12", ("a-b", "12", None, "models:/a-b/12")),
        ("a-b", ("a-b", None, None, "models:/a-b")),
    ],
)
def test_registry_references_parse_to_name_version_alias(text, expected):
    ref = ModelRef.registry(text)
    assert (ref.name, ref.version, ref.alias, ref.uri) == expected and ref.text == text and ref.is_registry
    assert parse_ref(text) == expected[:3]


def test_only_a_models_uri_is_a_registry_reference_where_paths_are_accepted(tmp_path):
    assert ModelRef.parse("models:/a@b").is_registry
    local = ModelRef.parse(tmp_path / "a/3")  # NAME/VERSION-shaped, but a path here
    assert not local.is_registry and local.uri == str(tmp_path / "a/3") and local.pin() is local
    assert ModelRef.parse(local) is local


@pytest.mark.parametrize(
    "text, message",
    [
        ("models:/", "model reference 'models:/' is empty"),
        ("a-b/latest", "model reference 'a-b/latest': version must be a number"),
    ],
)
def test_malformed_references_fail_with_one_line(text, message):
    with pytest.raises(ConfigError) as err:
        ModelRef.registry(text)
    assert str(err.value) == message


def test_a_reference_with_no_version_or_alias_cannot_be_pinned():
    with pytest.raises(ConfigError, match="names no version: use NAME/VERSION or NAME@ALIAS"):
        ModelRef.parse("models:/a-b").pin()


def test_check_ref_names_what_the_index_holds():
    index = {"a-b": {"versions": ["1", "2"], "aliases": {"champion": "1"}}}
    check_ref(ModelRef.registry("a-b@champion"), index)
    for text, message in [
        ("c", "c: no registered model named 'c'; registered models: a-b"),
        ("a-b/7", "a-b/7: a-b has no version 7; its versions: 1, 2"),
        ("models:/a-b@x", "models:/a-b@x: a-b has no alias @x; its aliases: @champion (v1)"),
    ]:
        with pytest.raises(ConfigError) as err:
            check_ref(ModelRef.registry(text), index)
        assert str(err.value) == message


def test_the_inference_layer_refuses_a_registry_string_and_names_model_ref(tmp_path):
    from deepsynth.inference.summarizer import Summarizer, resolve_ref

    with pytest.raises(ConfigError, match=r"ModelRef\.parse\('models:/a@b'\)"):
        resolve_ref("models:/a@b", tmp_path)
    with pytest.raises(ConfigError, match="no such export folder or zip package"):
        Summarizer.load(ModelRef.parse(tmp_path / "missing"))


def test_no_registry_module_shadows_a_public_name():
    """``from deepsynth.registry import download`` is the function even after every defining module loaded."""
    import importlib
    import inspect

    import deepsynth.registry as registry

    for module in set(registry._EXPORTS.values()):
        importlib.import_module(module)
    assert [n for n in registry.__all__ if inspect.ismodule(getattr(registry, n))] == []
