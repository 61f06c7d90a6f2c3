"""The command line in CI and cron: one JSON document on stdout, one error block, checks before any run."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from deepsynth.errors import ConfigError
from deepsynth_cli import cli, main
from deepsynth_cli.logs import strip_ansi, wants_color
from pipelines.config_loading import load_run_config

ROOT = Path(__file__).parents[1]
QUICKSTART = str(ROOT / "configs" / "quickstart.yaml")
SUPPORT = Path(__file__).parent / "support" / "loaded_modules.py"
README_EXAMPLE = ["run", "--config", QUICKSTART, "--set", "render.modes=[base]", "--set", "ingest.max_documents=50"]


def deepsynth(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI in a fresh process (``loaded_modules.py`` reports its exit code and what it imported)."""
    return subprocess.run(
        [sys.executable, str(SUPPORT), "--", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def loaded(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture
def bad_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,body,summary\n1,some text,a summary\n")
    return path


@pytest.mark.parametrize(
    "argv, says",
    [
        (README_EXAMPLE, "--set render.modes: renders ['base'], but train.mode (" + QUICKSTART + ") is 'tiny'"),
        (["data", "missing.jsonl"], "INPUT: file 'missing.jsonl' does not exist"),
        (
            ["data", "BAD_CSV"],
            "field 'text': column not found; columns are ['id', 'body', 'summary']; name the right column with "
            "--text-column",
        ),
        (
            ["run", "--config", QUICKSTART, "--set", "train.batchsize=3"],
            "--set train.batchsize: unknown key (did you mean 'batch_size'?)",
        ),
        (["run", "--config", QUICKSTART, "--set", "batch_size=3"], "did you mean 'train.batch_size'?"),
    ],
)
def test_bad_config_fails_before_zenml_with_one_error_line(argv, says, bad_csv):
    argv = [str(bad_csv) if a == "BAD_CSV" else a for a in argv]
    proc = deepsynth(*argv)
    result = loaded(proc)
    assert result["exit_code"] == 2
    assert "zenml" not in result["modules"] and "torch" not in result["modules"]
    assert says in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1


def test_json_error_is_one_document_on_stdout(capsys):
    assert main([*README_EXAMPLE, "--json"]) == 2
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["exit_code"] == 2 and "train.mode" in document["error"]
    assert captured.err.startswith("error: --set render.modes")


def test_debug_shows_the_traceback(capsys, tmp_path):
    assert main(["--debug", "run", "--config", str(tmp_path / "absent.yaml")]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main(["run", "--config", str(tmp_path / "absent.yaml"), "--debug"]) == 2  # after the command too
    assert "Traceback" in capsys.readouterr().err


def test_help_lists_every_exit_code(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for code in ("0", "1", "2", "3", "4", "143"):
        assert re.search(rf"^\s+{code}\s+\w", out, re.M), code


def test_yaml_errors_name_the_file_and_section(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("train:\n  batchsize: 3\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml: train\.batchsize: unknown key \(did you mean 'batch_size'\?\)"):
        load_run_config(path)


def test_a_file_source_needs_a_path():
    with pytest.raises(ConfigError, match="ingest.path: required when ingest.source is 'file'"):
        load_run_config(QUICKSTART, ["ingest.source=file"])


def test_splits_that_training_or_evaluation_need_must_hold_documents(tmp_path):
    rows = "".join(f"d{i},Document {i} has some words.,Summary {i}.\n" for i in range(10))
    path = tmp_path / "ten.csv"
    path.write_text("id,text,summary\n" + rows)
    overrides = ["ingest.source=file", f"ingest.path={path}", "ingest.split_ratios={train: 0.8, validation: 0.2}"]
    with pytest.raises(
        ConfigError,
        match=r"--set evaluate\.split|evaluate\.split \(.*quickstart\.yaml\)|quickstart\.yaml: evaluate\.split",
    ):
        load_run_config(QUICKSTART, overrides)
    with pytest.raises(ConfigError, match="split 'test' would hold no documents"):
        load_run_config(QUICKSTART, overrides)
    config = load_run_config(QUICKSTART, [*overrides, "evaluate.split=validation"])  # a split that holds documents
    assert config.evaluate.split == "validation"


def test_data_takes_config_and_set(tmp_path, write_jsonl, make_docs):
    from deepsynth_cli.runs import file_source_config

    path = write_jsonl(make_docs(3))
    config, _ = file_source_config(
        str(path), QUICKSTART, ("validate.min_valid_rows=1",), None, "body", None, "data", check=False
    )
    assert config.pipeline == "data" and config.render.modes == ["tiny"]  # from the YAML
    assert (
        config.ingest.source == "file" and config.ingest.text_column == "body" and config.validate.min_valid_rows == 1
    )


def test_render_takes_config_and_set_and_fails_when_every_row_is_rejected(tmp_path, write_jsonl, make_docs, capsys):
    good = write_jsonl(make_docs(2))
    assert (
        main(
            [
                "render",
                str(good),
                "--out",
                str(tmp_path / "o"),
                "--config",
                QUICKSTART,
                "--set",
                "render.max_pages=1",
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["documents"] == 2 and summary["pages"] == 2  # tiny mode from the YAML, one page each
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n[1, 2]\n")
    assert main(["render", str(bad), "--out", str(tmp_path / "o2"), "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["exit_code"] == 2
    assert "no document could be read (2 rejected" in captured.err


def test_unknown_registry_model_is_one_line_exit_2(zenml_client, capsys):
    assert main(["models", "show", "no-such-model", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["exit_code"] == 2
    [line] = captured.err.strip().splitlines()
    assert line.startswith("error: no-such-model: no registered model named 'no-such-model'; registered models: ")


def test_color_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    class Tty:
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert wants_color(Tty()) and not wants_color(open(os.devnull, "w"))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_color(Tty())
    assert strip_ansi("\x1b[33mAdd type hints\x1b[0m") == "Add type hints"


def test_the_pyfunc_model_imports_without_warnings():
    code = (
        "import warnings, mlflow.pyfunc, pandas\nwarnings.simplefilter('error')\nimport deepsynth.registry.pyfunc_model"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def readme_commands() -> list[list[str]]:
    """Every ``deepsynth ...`` command in README.md's bash blocks and inline code, comments dropped."""
    text = (ROOT / "README.md").read_text()
    lines = re.findall(r"^(deepsynth .+)$", text, re.M) + re.findall(r"`(deepsynth [^`]+)`", text)
    return [shlex.split(line.split("  #")[0]) for line in lines]


@pytest.mark.parametrize("argv", readme_commands(), ids=lambda a: " ".join(a[1:4]))
def test_every_readme_command_parses_and_its_config_checks(argv):
    """Parse each command as click would; commands that run a config load and check it (dry)."""
    args, command = argv[1:], cli
    ctx = command.make_context("deepsynth", list(args), resilient_parsing=True)
    while ctx.protected_args or (hasattr(command, "commands") and ctx.args):
        name, *rest = [*ctx.protected_args, *ctx.args]
        command = command.get_command(ctx, name)
        assert command is not None, name
        ctx = command.make_context(name, rest, parent=ctx, resilient_parsing=True)
    if command.name == "run":
        load_run_config(ctx.params["config_path"], list(ctx.params["overrides"]))


@pytest.mark.slow
def test_data_pipeline_json_is_clean_and_quiet(tmp_path, write_jsonl, make_docs):
    """A real `deepsynth data --json`: one JSON document on stdout; no warnings or colour on stderr."""
    path = write_jsonl(make_docs(6))
    proc = subprocess.run(
        [sys.executable, "-m", "deepsynth_cli", "data", str(path), "--mode", "tiny", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["validation_passed"] is True and Path(summary["log_file"]).is_file()
    assert "\x1b[" not in proc.stderr and "Warning" not in proc.stderr and "Traceback" not in proc.stderr
