"""The deepsynth command: help everywhere, exit codes, standalone rendering, light imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deepsynth.cli import cli, main


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from deepsynth.cli import main; "
        "assert main(['--help']) == 0; "
        "heavy = [m for m in ('torch', 'zenml', 'mlflow', 'transformers', 'great_expectations') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_the_data_pipeline_does_not_import_model_libraries():
    """`deepsynth data` needs no torch, transformers or peft: importing them costs seconds per run."""
    code = (
        "import sys; import pipelines.run, pipelines.data_pipeline, pipelines.deployment; "
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'bitsandbytes') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_subcommand_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert "Usage: deepsynth " + command in capsys.readouterr().out


def test_bad_usage_exits_2(capsys, tmp_path):
    assert main(["render", "x.jsonl", "--out", str(tmp_path), "--mode", "huge"]) == 2
    assert "Invalid value for '--mode'" in capsys.readouterr().err
    assert main(["run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["nonsense"]) == 2


def test_render_command_standalone(tmp_path, write_jsonl, make_docs, capsys):
    path = write_jsonl(make_docs(3) + [{"id": "cjk", "text": "中文", "summary": "s"}])
    assert main(["render", str(path), "--out", str(tmp_path / "out"), "--mode", "small", "--png", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["documents"] == 4 and summary["pages"] == 4
    assert summary["missing_glyph_documents"] == [{"id": "cjk", "code_points": [0x4E2D, 0x6587]}]
    assert len(list((tmp_path / "out" / "png").glob("*-small-0.png"))) == 4


def test_input_error_exit_code_names_file(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("id,body\n1,x\n")
    assert main(["render", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "bad.csv, row 1, field 'text': column not found" in capsys.readouterr().err
