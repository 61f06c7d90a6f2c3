"""The deepsynth command: help everywhere, exit codes, standalone rendering, light imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from deepsynth_cli import cli, main

SUPPORT = Path(__file__).parent / "support" / "loaded_modules.py"


def loaded_after(*argv: str) -> dict:
    """Run tests/support/loaded_modules.py in a fresh interpreter: the modules loaded and the CLI's exit code."""
    out = subprocess.run([sys.executable, str(SUPPORT), *argv], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def test_help_does_not_import_heavy_libraries():
    result = loaded_after("--", "--help")
    assert result["exit_code"] == 0
    heavy = [m for m in ("torch", "zenml", "mlflow", "transformers", "great_expectations") if m in result["modules"]]
    assert not heavy, heavy


def test_the_data_pipeline_does_not_import_model_libraries():
    """`deepsynth data` needs no torch, transformers or peft: importing them costs seconds per run."""
    modules = loaded_after("pipelines.run", "pipelines.data_pipeline", "pipelines.deployment")["modules"]
    heavy = [m for m in ("torch", "transformers", "peft", "bitsandbytes") if m in modules]
    assert not heavy, heavy


def test_python_dash_m_runs_the_same_command():
    out = subprocess.run([sys.executable, "-m", "deepsynth_cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "Usage: deepsynth" in out.stdout


COMMAND_NAMES = cli.list_commands(click.Context(cli))


@pytest.mark.parametrize("command", COMMAND_NAMES)
def test_every_subcommand_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert "Usage: deepsynth " + command in capsys.readouterr().out
    assert cli.get_command(click.Context(cli), command).name == command  # the lazy entry names the right command


def test_a_command_imports_its_own_module_only():
    """Commands load lazily: `models list` imports deepsynth_cli.models and none of the other command modules."""
    modules = loaded_after("--", "models", "list", "--help")["modules"]
    own = {m for m in modules if m.startswith("deepsynth_cli.")}
    assert own == {"deepsynth_cli.app", "deepsynth_cli.models", "deepsynth_cli.output"}, own
    listing = loaded_after("--", "--help")
    assert listing["exit_code"] == 0 and "deepsynth_cli.compare" not in listing["modules"]


def test_bad_usage_exits_2(capsys, tmp_path):
    assert main(["render", "x.jsonl", "--out", str(tmp_path), "--mode", "huge"]) == 2
    assert "Invalid value for '--mode'" in capsys.readouterr().err
    assert main(["run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["nonsense"]) == 2


def test_render_command_standalone(tmp_path, write_jsonl, make_docs, capsys):
    # 中文 is drawn by the CJK fallback font; no font in the chain has Egyptian hieroglyphs.
    path = write_jsonl(make_docs(3) + [{"id": "glyphless", "text": "中文 \U00013000\U00013001", "summary": "s"}])
    assert main(["render", str(path), "--out", str(tmp_path / "out"), "--mode", "small", "--png", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["documents"] == 4 and summary["pages"] == 4
    assert summary["missing_glyph_documents"] == [{"id": "glyphless", "code_points": ["U+13000", "U+13001"]}]
    assert len(list((tmp_path / "out" / "png").glob("*-small-0.png"))) == 4


def test_input_error_exit_code_names_file(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("id,body\n1,x\n")
    assert main(["render", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "bad.csv, row 1, field 'text': column not found" in capsys.readouterr().err
