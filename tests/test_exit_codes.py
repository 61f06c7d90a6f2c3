"""Exit codes have one owner: the error classes. ``--help`` and the README list what they define."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from deepsynth.errors import DeepSynthError, Interrupted, exit_codes
from deepsynth_cli import cli, main

ROOT = Path(__file__).resolve().parents[1]


def readme_exit_codes() -> dict[int, str]:
    """The exit-code table under the README's "## Command line"."""
    section = ROOT.joinpath("README.md").read_text().split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", section, flags=re.M)
    return {int(code): meaning for code, meaning in rows}


def test_the_readme_lists_every_exit_code_the_error_classes_define():
    assert list(readme_exit_codes()) == list(exit_codes())


def test_help_lists_every_exit_code_with_its_meaning(capsys):
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for code, meaning in exit_codes().items():
        assert f"{code} {meaning}" in out


def test_every_error_class_exits_with_a_documented_code():
    sources = [
        p
        for folder in ("deepsynth", "pipelines", "deepsynth_cli")
        for p in ROOT.joinpath(folder).rglob("*.py")
        if "DeepSynthError)" in p.read_text() or "Error)" in p.read_text()
    ]
    for path in sources:
        importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    pending, seen = [DeepSynthError], []
    while pending:
        cls = pending.pop()
        seen.append(cls)
        pending.extend(cls.__subclasses__())
    assert len(seen) > 15
    undocumented = {f"{c.__module__}.{c.__qualname__}": c.exit_code for c in seen if c.exit_code not in exit_codes()}
    assert not undocumented


def test_ctrl_c_exits_130_with_one_error_line(capsys):
    @cli.command("interrupt-me")
    def interrupt_me() -> None:
        raise KeyboardInterrupt

    try:
        assert main(["interrupt-me"]) == Interrupted.exit_code == 130
    finally:
        cli.commands.pop("interrupt-me")
    assert "error: interrupted" in capsys.readouterr().err


def test_an_error_carries_its_run_summary_and_an_instance_exit_code():
    error = DeepSynthError("step train_lora failed", exit_code=143, summary={"run_name": "r"})
    assert (error.exit_code, error.summary) == (143, {"run_name": "r"})
    assert (DeepSynthError.exit_code, DeepSynthError.summary) == (1, None)  # the class keeps its own
    assert error.with_summary({"run_name": "s"}) is error and error.summary == {"run_name": "s"}


def test_a_fired_run_exits_with_the_runs_own_code(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [\n")
    assert main(["schedule", "fire", "nightly", "--config", str(broken)]) == 2  # `deepsynth run` exits 2
    err = capsys.readouterr().err
    assert "finished, exit 2" in err and "error: the scheduled run 'nightly' exited with code 2" in err
