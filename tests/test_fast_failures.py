"""Fast, exact failures: wrong references and arguments exit 2 with a message naming what exists, before any
heavy library (torch, transformers, peft, ZenML, MLflow) is imported, which is what keeps them under 2 s.

Each command runs as a real process under ``python -X importtime``, whose report lists every module the
process imported; registry cases use a home set up as ``deepsynth run`` does, with real MLflow entries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.tamper import flip_file_byte

ROOT = Path(__file__).parents[1]
HEAVY = {"torch", "transformers", "peft", "zenml", "mlflow"}
NAME = "deepsynth-summarizer"


def deepsynth(home: Path, *argv: str) -> tuple[subprocess.CompletedProcess, set[str], list[str]]:
    """Run the CLI with ``--json``; return the process, the top-level modules it imported and its other stderr lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(DEEPSYNTH_HOME=str(home), ZENML_CONFIG_PATH=str(home / "zenml"))
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "deepsynth_cli", *argv, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stderr.splitlines()
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines if line.startswith("import time:")}
    return proc, imported, [line for line in lines if not line.startswith("import time:")]


def assert_fast_usage_error(result: tuple, message: str) -> None:
    proc, imported, stderr = result
    assert proc.returncode == 2, "\n".join(stderr[-20:])
    assert json.loads(proc.stdout)["exit_code"] == 2
    assert len(stderr) == 1 and stderr[0].startswith("error: ") and message in stderr[0], stderr
    assert not imported & HEAVY, f"imported before failing: {sorted(imported & HEAVY)}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A home set up by the real set-up code, whose MLflow registry holds two models: one with
    versions 1 and 2 (tagged, a third one deleted) and @champion on 1, one with no version; and its URI."""
    from mlflow import MlflowClient

    home = tmp_path_factory.mktemp("fast-failures") / "home"
    env = {**os.environ, "DEEPSYNTH_HOME": str(home), "ZENML_CONFIG_PATH": str(home / "zenml")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "support" / "set_up_store.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    uri = json.loads(proc.stdout.strip().splitlines()[-1])["tracking_uri"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # not a registry URI left set in the environment
    client.create_registered_model(NAME, description="the summarizer")
    for i in range(3):
        client.create_model_version(
            NAME, source=str(home / "no-package"), tags={"metric.rouge_l": str(0.25 + i / 10), "adapter_sha256": "ab"}
        )
    client.delete_model_version(NAME, "3")
    client.set_model_version_tag(NAME, "2", "note", "second")
    client.set_registered_model_alias(NAME, "champion", "1")
    client.set_registered_model_alias(NAME, "candidate", "1")
    client.create_registered_model("other-model")
    return home, uri


@pytest.fixture(scope="module")
def registry_home(registry):
    return registry[0]


NO_SUCH = f"no registered model named 'nosuch'; registered models: {NAME}, other-model"
REGISTRY_CASES = [
    (["models", "show", "nosuch@champion"], NO_SUCH),
    (["models", "show", "nosuch"], NO_SUCH),
    (["models", "show", f"{NAME}/9"], f"{NAME} has no version 9; its versions: 1, 2"),
    (["models", "show", f"{NAME}@nope"], f"{NAME} has no alias @nope; its aliases: @candidate (v1), @champion (v1)"),
    (["models", "show", "other-model@champion"], "other-model has no alias @champion; its aliases: none"),
    (["models", "promote", NAME, "7"], f"{NAME} has no version 7; its versions: 1, 2"),
    (["models", "download", f"{NAME}@nope", "--out", "{tmp}/out"], f"{NAME} has no alias @nope"),
    (["summarize", "--model", "models:/nosuch/1", "{text}"], "no registered model named 'nosuch'"),
    (["summarize", "--model", f"models:/{NAME}@nope", "{text}"], f"{NAME} has no alias @nope"),
    (["adapters", "merge", f"models:/{NAME}/1", f"models:/{NAME}/3", "--out", "{tmp}/out"], f"{NAME} has no version 3"),
]


@pytest.mark.slow
@pytest.mark.parametrize("argv, message", REGISTRY_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_an_unknown_model_version_or_alias_fails_at_once_naming_what_exists(registry_home, tmp_path, argv, message):
    text = tmp_path / "paper.txt"
    text.write_text("A short paper.")
    argv = [a.format(tmp=tmp_path, text=text) for a in argv]
    assert_fast_usage_error(deepsynth(registry_home, *argv), message)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_known_reference_still_goes_through_to_mlflow(registry_home):
    proc, imported, stderr = deepsynth(registry_home, "models", "promote", NAME, "1")
    assert proc.returncode == 0, "\n".join(stderr[-20:])
    assert json.loads(proc.stdout)["version"] == "1" and "mlflow" in imported


BROWSE = [
    ["models", "list"],
    ["models", "show", NAME],
    ["models", "show", f"{NAME}@champion"],
    ["models", "show", f"{NAME}/2"],
    ["models", "show", "other-model"],
]


@pytest.mark.slow
def test_browsing_a_local_registry_reads_its_sqlite_file_and_says_what_mlflow_says(registry):
    """`models list/show` on the local stack's registry import neither MLflow nor ZenML (which costs 2-3 s per
    command) and print exactly what the same views print through MLflow's client (a deleted version left out)."""
    import mlflow
    from support.adapters import mlflow_state, restore_mlflow_state

    from deepsynth.registry.browse import list_models, show

    home, uri = registry
    previous = mlflow_state()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        through_mlflow = [list_models()] + [show(argv[2]) for argv in BROWSE[1:]]
    finally:
        restore_mlflow_state(previous)
    assert [v["version"] for v in through_mlflow[1]["versions"]] == ["1", "2"]
    assert through_mlflow[2]["aliases"] == ["candidate", "champion"] and through_mlflow[3]["tags"]["note"] == "second"
    for argv, expected in zip(BROWSE, through_mlflow, strict=True):
        proc, imported, stderr = deepsynth(home, *argv)
        assert proc.returncode == 0, "\n".join(stderr[-20:])
        assert not imported & HEAVY, (argv, sorted(imported & HEAVY))
        assert json.loads(proc.stdout) == expected, argv


@pytest.mark.slow
def test_compare_of_a_model_name_asks_for_a_version(registry_home):
    proc, _imported, stderr = deepsynth(registry_home, "models", "compare", NAME, f"{NAME}/1")
    assert proc.returncode == 2 and json.loads(proc.stdout)["exit_code"] == 2, "\n".join(stderr[-20:])
    assert stderr == [f"error: {NAME}: names a model, not a version: use NAME/VERSION or NAME@ALIAS"]


def test_the_library_names_what_exists_too_through_any_mlflow_store(tmp_path):
    """Without the SQLite shortcut (a remote registry), MLflow's own "not found" becomes the same message."""
    from mlflow import MlflowClient
    from support.adapters import mlflow_store_at

    from deepsynth.errors import ConfigError
    from deepsynth.registry import download, promote, show
    from deepsynth.registry.catalog import sqlite_index
    from deepsynth.registry.versions import registry_index

    with mlflow_store_at(tmp_path, "fast-failures"):
        client = MlflowClient()
        client.create_registered_model(NAME)
        client.create_model_version(NAME, source=str(tmp_path / "no-package"))
        client.set_registered_model_alias(NAME, "champion", "1")
        assert (
            registry_index()
            == sqlite_index(tmp_path / "mlflow.db")
            == {NAME: {"versions": ["1"], "aliases": {"champion": "1"}}}
        )
        for call, message in [
            (lambda: show("nosuch"), f"registered models: {NAME}"),
            (lambda: show(f"{NAME}@nope"), "its aliases: @champion (v1)"),
            (lambda: promote(NAME, 4), "its versions: 1"),
            (lambda: download(f"{NAME}/2", tmp_path / "out"), f"{NAME} has no version 2"),
        ]:
            with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
                call()
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "keep.txt").write_text("mine")
        with pytest.raises(ConfigError, match="not an empty folder"):
            download(f"{NAME}@champion", tmp_path / "full")
        assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


@pytest.fixture
def sources(tmp_path):
    """Two source folders and a non-empty folder that is not an export (checked before anything loads)."""
    for name in ("a", "b", "full"):
        (tmp_path / name).mkdir()
    (tmp_path / "full" / "notes.txt").write_text("not an export")
    return tmp_path


MERGE_CASES = [
    (["{a}", "{b}", "--weights", "1", "--out", "{new}"], "--weights: 2 sources but 1 weight"),
    (["{a}", "{b}", "--weights", "1,2,3", "--out", "{new}"], "2 sources but 3 weights"),
    (["{a}", "--out", "{new}"], "give at least two adapters to merge (got 1)"),
    (["{a}", "{b}", "--method", "ties", "--density", "1.5", "--out", "{new}"], "--density: 1.5 is not within (0, 1]"),
    (["{a}", "{b}", "--method", "ties", "--density", "0", "--out", "{new}"], "--density: 0.0 is not within (0, 1]"),
    (["{a}", "{b}", "--density", "0.5", "--out", "{new}"], "--density applies to ties and dare_linear only"),
    (["{a}", "{root}/missing", "--out", "{new}"], "missing: no such export folder or zip package"),
    (["{a}", "{b}", "--out", "{b}"], "a merge never writes over its own input"),
    (["{a}", "{b}", "--out", "{b}", "--force"], "a merge never writes over its own input"),
    (["{a}", "{b}", "--out", "{a}/inside", "--force"], "a merge never writes over its own input"),
    (["{a}", "{b}", "--out", "{root}", "--force"], "a merge never writes over its own input"),
    (["{a}", "{b}", "--out", "{full}"], "not empty; choose a new or empty folder, or --force"),
    (["{a}", "{b}", "--out", "{full}", "--force"], "holds files that are not an export package"),
]


@pytest.mark.parametrize("argv, message", MERGE_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_wrong_merge_arguments_fail_before_loading_anything(sources, argv, message):
    argv = [
        a.format(a=sources / "a", b=sources / "b", full=sources / "full", root=sources, new=sources / "new")
        for a in argv
    ]
    before = sorted(str(p.relative_to(sources)) for p in sources.rglob("*"))
    assert_fast_usage_error(deepsynth(sources / "home", "adapters", "merge", *argv), message)
    assert sorted(str(p.relative_to(sources)) for p in sources.rglob("*") if "home" not in p.parts) == before


def test_an_unknown_merge_method_is_a_usage_error(sources):
    proc, imported, stderr = deepsynth(
        sources / "home",
        "adapters",
        "merge",
        str(sources / "a"),
        str(sources / "b"),
        "--method",
        "magic",
        "--out",
        str(sources / "new"),
    )
    assert proc.returncode == 2 and "'magic' is not one of 'linear', 'ties', 'dare_linear', 'cat'" in proc.stderr
    assert not imported & HEAVY


def test_summarize_with_a_missing_package_path_exits_2_naming_it(tmp_path):
    text = tmp_path / "paper.txt"
    text.write_text("A short paper.")
    assert_fast_usage_error(
        deepsynth(tmp_path / "home", "summarize", "--model", str(tmp_path / "nodir"), str(text)),
        f"--model {tmp_path / 'nodir'}: no such export folder or zip package",
    )


def test_the_merge_help_says_what_force_may_replace():
    proc = subprocess.run(
        [sys.executable, "-m", "deepsynth_cli", "adapters", "merge", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "Replace an earlier export package at --out" in text and "is always refused" in text


@pytest.fixture(scope="module")
def exported_package(trained_adapter, rendered_dataset, tmp_path_factory):
    """A real export package of the session's trained adapter."""
    from deepsynth.export import export_adapter

    return export_adapter(
        trained_adapter, tmp_path_factory.mktemp("inference-py") / "package", dataset=rendered_dataset.path
    ).output_dir


def damaged_copy(package: Path, tmp_path: Path, damage: str) -> Path:
    import shutil

    copy = tmp_path / "package"
    shutil.copytree(package, copy)
    if damage == "tampered":
        flip_file_byte(copy / "adapter_model.safetensors", -1)
    elif damage == "incomplete":
        (copy / "adapter_config.json").unlink()
    return copy


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage, text, code, message",
    [
        (
            "none",
            "missing.txt",
            2,
            "--text-file {tmp}/missing.txt: cannot be read as UTF-8 text (No such file or directory)",
        ),
        ("tampered", "paper.txt", 1, "adapter_model.safetensors"),
        ("incomplete", "paper.txt", 1, "adapter_config.json"),
    ],
)
def test_inference_py_errors_are_one_line_and_an_exit_code(
    exported_package, shared_home, tmp_path, damage, text, code, message
):
    package = damaged_copy(exported_package, tmp_path, damage) if damage != "none" else exported_package
    (tmp_path / "paper.txt").write_text("A short paper about rivers.")
    proc = subprocess.run(
        [
            sys.executable,
            str(package / "inference.py"),
            "--text-file",
            str(tmp_path / text),
            "--cache-dir",
            str(shared_home),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == code and proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message.format(tmp=tmp_path) in lines[0], proc.stderr
