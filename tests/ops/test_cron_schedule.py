"""Scheduled retraining: cron validation, the crontab entry, installing into a crontab file."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from deepsynth_cli import main
from deepsynth.errors import ConfigError
from pipelines.config_loading import load_run_config
from pipelines.scheduling import MARKER, CronJob, install, parse_cron

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("expr", ["0 3 * * 1", "*/15 * * * *", "0 0 1,15 * mon-fri", "30 2 * jan-mar 0", "@daily"])
def test_valid_cron_expressions(expr):
    assert parse_cron(expr)


@pytest.mark.parametrize(
    ("expr", "message"),
    [("0 3 * *", "has 4 fields"), ("61 * * * *", "minute field: 61 is outside 0-59"), ("0 25 * * *", "hour field"),
     ("*/0 * * * *", "step '0'"), ("0 0 * * funday", "'funday' is not a number"), ("0 5-2 * * *", "runs backwards")],
)
def test_invalid_cron_expressions_name_the_field(expr, message):
    with pytest.raises(ConfigError, match=message):
        parse_cron(expr, where="--cron")


def test_schedule_config_validates_its_cron(tmp_path):
    config = load_run_config(ROOT / "configs" / "schedule.yaml")
    assert config.schedule.cron == "0 3 * * 1" and not config.tracking.allow_local_store
    with pytest.raises(ConfigError, match="schedule.cron: '0 3 \\* \\*' has 4 fields"):
        load_run_config(ROOT / "configs" / "schedule.yaml", ["schedule.cron='0 3 * *'"])


def test_print_shows_an_entry_that_runs_deepsynth_run(capsys, tmp_path):
    crontab = tmp_path / "crontab"
    code = main(["schedule", "install", "--cron", "0 3 * * 1", "--config", str(ROOT / "configs" / "quickstart.yaml"),
                 "--print", "--crontab-file", str(crontab)])
    assert code == 0
    line = capsys.readouterr().out.strip()
    assert not crontab.exists(), "--print installs nothing"
    assert line.startswith("0 3 * * 1 cd ") and line.endswith(f"{MARKER}retrain")
    command = line[len("0 3 * * 1 "): -len(f" {MARKER}retrain")]
    argv = shlex.split(command.split(" && ")[-1].split(" >> ")[0])
    assert Path(argv[0]).name == "deepsynth" and Path(argv[0]).is_absolute()
    assert argv[1:4] == ["run", "--config", str((ROOT / "configs" / "quickstart.yaml").resolve())]
    assert argv[4:] == ["--set", "schedule.cron=null"]


def test_install_into_a_crontab_file_replaces_its_own_entry_only(tmp_path, monkeypatch, capsys):
    crontab = tmp_path / "crontab"
    crontab.write_text("MAILTO=ops@example.com\n5 4 * * * /usr/bin/backup\n")
    monkeypatch.setenv("DEEPSYNTH_CRONTAB_FILE", str(crontab))
    args = ["schedule", "install", "--config", str(ROOT / "configs" / "quickstart.yaml")]
    assert main(args + ["--cron", "0 3 * * 1"]) == 0
    assert main(args + ["--cron", "0 4 * * *"]) == 0  # same name: replaced, not duplicated
    assert main(args + ["--cron", "@weekly", "--name", "weekly"]) == 0
    lines = crontab.read_text().splitlines()
    assert lines[:2] == ["MAILTO=ops@example.com", "5 4 * * * /usr/bin/backup"]
    ours = [ln for ln in lines if MARKER in ln]
    assert len(ours) == 2 and ours[0].startswith("0 4 * * * ") and ours[1].startswith("@weekly ")
    assert main(args + ["--cron", "0 3 * *"]) == 2
    assert "has 4 fields" in capsys.readouterr().err
    assert main(["schedule", "install", "--cron", "0 3 * * 1", "--config", str(tmp_path / "nope.yaml")]) == 2


@pytest.mark.slow
def test_installed_entry_runs(tmp_path):
    """The command part of the entry is a working shell command (run with `--help` swapped in)."""
    job = CronJob(cron="0 3 * * 1", config=ROOT / "configs" / "quickstart.yaml", workdir=tmp_path, log_file=tmp_path / "log" / "s.log")
    entry = install(job, tmp_path / "crontab")
    command = entry[len("0 3 * * 1 "): entry.index(f" {MARKER}")].replace(" run --config ", " --help --config ", 1)
    import subprocess

    subprocess.run(["sh", "-c", command], check=False, timeout=60)
    assert "Usage: deepsynth" in (tmp_path / "log" / "s.log").read_text()
