"""Scheduled retraining: cron validation, the crontab entry, installing into a crontab file, list and remove,
the default config and the stack check at install time. (Firings under cron's environment: test_cron_firing.py.)"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from deepsynth.errors import ConfigError
from deepsynth_cli import main
from pipelines.config_loading import load_run_config
from pipelines.scheduling import MARKER, CronJob, install, parse_cron, parse_entries

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("expr", ["0 3 * * 1", "*/15 * * * *", "0 0 1,15 * mon-fri", "30 2 * jan-mar 0", "@daily"])
def test_valid_cron_expressions(expr):
    assert parse_cron(expr)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 3 * *", "has 4 fields"),
        ("61 * * * *", "minute field: 61 is outside 0-59"),
        ("0 25 * * *", "hour field"),
        ("*/0 * * * *", "step '0'"),
        ("0 0 * * funday", "'funday' is not a number"),
        ("0 5-2 * * *", "runs backwards"),
    ],
)
def test_invalid_cron_expressions_name_the_field(expr, message):
    with pytest.raises(ConfigError, match=message):
        parse_cron(expr, where="--cron")


def test_schedule_config_validates_its_cron(tmp_path):
    config = load_run_config(ROOT / "configs" / "schedule.yaml")
    assert config.schedule.cron == "0 3 * * 1" and not config.tracking.allow_local_store
    with pytest.raises(ConfigError, match="schedule.cron: '0 3 \\* \\*' has 4 fields"):
        load_run_config(ROOT / "configs" / "schedule.yaml", ["schedule.cron='0 3 * *'"])


def test_print_shows_an_entry_that_fires_deepsynth_run_with_absolute_paths(capsys, tmp_path, monkeypatch):
    crontab = tmp_path / "crontab"
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DEEPSYNTH_HOME", "relative-home")  # made absolute in the entry: cron starts in $HOME
    code = main(
        [
            "schedule",
            "install",
            "--cron",
            "0 3 * * 1",
            "--config",
            "configs/quickstart.yaml",
            "--print",
            "--crontab-file",
            str(crontab),
        ]
    )
    assert code == 0
    line = capsys.readouterr().out.strip()
    assert not crontab.exists(), "--print installs nothing"
    assert line.startswith(f"0 3 * * 1 cd {ROOT.resolve()} && ") and line.endswith(f"{MARKER}retrain")
    command = line[len("0 3 * * 1 ") : -len(f" {MARKER}retrain")]
    home = ROOT.resolve() / "relative-home"
    assert f" DEEPSYNTH_HOME={home} " in command and command.endswith(f" >> {home}/logs/schedule-retrain.log 2>&1")
    argv = shlex.split(command.split(" && ")[-1].split(" >> ")[0])[1:]  # after DEEPSYNTH_HOME=…
    assert Path(argv[0]).is_absolute() and Path(argv[0]).name == "deepsynth" and Path(argv[0]).is_file()
    assert argv[1:6] == [
        "schedule",
        "fire",
        "retrain",
        "--config",
        str((ROOT / "configs" / "quickstart.yaml").resolve()),
    ]
    assert argv[6:] == ["--set", "schedule.cron=null"]


def test_default_config_runs_on_the_local_stack_and_another_stack_is_refused_at_install(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    crontab = tmp_path / "crontab"
    code = main(["schedule", "install", "--cron", "@daily", "--crontab-file", str(crontab), "--json"])
    installed = json.loads(capsys.readouterr().out)
    assert code == 0 and installed["config"] == str(ROOT.resolve() / "configs" / "schedule-local.yaml")
    assert load_run_config(ROOT / "configs" / "schedule-local.yaml").deployment.stack is None
    # configs/schedule.yaml needs the Kubernetes stack, which this home does not have: refused now, not at every firing.
    code = main(
        [
            "schedule",
            "install",
            "--cron",
            "@daily",
            "--crontab-file",
            str(crontab),
            "--name",
            "k8s",
            "--config",
            "configs/schedule.yaml",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "the stack 'deepsynth-k8s-gpu' is not registered" in err
    assert (
        "deepsynth stack register configs/stacks/k8s-gpu-s3.yaml" in err
        and "--config configs/schedule-local.yaml" in err
    )
    assert [e["name"] for e in parse_entries(crontab.read_text())] == ["retrain"]


def test_list_and_remove(capsys, tmp_path, monkeypatch):
    crontab = tmp_path / "crontab"
    crontab.write_text("MAILTO=ops@example.com\n")
    monkeypatch.setenv("DEEPSYNTH_CRONTAB_FILE", str(crontab))
    config = str(ROOT / "configs" / "quickstart.yaml")
    assert main(["schedule", "list", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []
    for name, cron in (("nightly", "0 2 * * *"), ("weekly", "@weekly")):
        assert (
            main(
                [
                    "schedule",
                    "install",
                    "--cron",
                    cron,
                    "--name",
                    name,
                    "--config",
                    config,
                    "--set",
                    "train.num_epochs=1",
                ]
            )
            == 0
        )
    capsys.readouterr()
    assert main(["schedule", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["name"], e["cron"], e["config"]) for e in listed] == [
        ("nightly", "0 2 * * *", config),
        ("weekly", "@weekly", config),
    ]
    assert listed[0]["overrides"] == ["train.num_epochs=1", "schedule.cron=null"]
    assert listed[0]["log_file"].endswith("/logs/schedule-nightly.log") and Path(listed[0]["log_file"]).is_absolute()
    assert main(["schedule", "list"]) == 0 and capsys.readouterr().out.splitlines()[1].startswith("weekly\t@weekly\t")
    assert main(["schedule", "remove", "nightly", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"]["name"] == "nightly"
    assert crontab.read_text().splitlines()[0] == "MAILTO=ops@example.com"
    assert [e["name"] for e in parse_entries(crontab.read_text())] == ["weekly"]
    assert main(["schedule", "remove", "nightly"]) == 2
    assert "no schedule entry named 'nightly' (entries: weekly)" in capsys.readouterr().err


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
    job = CronJob(
        cron="0 3 * * 1",
        config=ROOT / "configs" / "quickstart.yaml",
        workdir=tmp_path,
        log_file=tmp_path / "log" / "s.log",
    )
    entry = install(job, tmp_path / "crontab")
    command = entry[len("0 3 * * 1 ") : entry.index(f" {MARKER}")].replace(
        " schedule fire retrain ", " schedule fire --help ", 1
    )
    import subprocess

    subprocess.run(["sh", "-c", command], check=False, timeout=60)
    assert "Usage: deepsynth schedule fire" in (tmp_path / "log" / "s.log").read_text()


def test_default_config_follows_the_active_stack(zenml_client, capsys, tmp_path, monkeypatch):
    """With the stack configs/schedule.yaml names registered and active, that config is the default (and accepted)."""
    from zenml.enums import StackComponentType

    from pipelines.local_stack import STACK

    monkeypatch.chdir(ROOT)
    stack = load_run_config(ROOT / "configs" / "schedule.yaml").deployment.stack
    zenml_client.create_stack(
        stack, components={StackComponentType.ORCHESTRATOR: "default", StackComponentType.ARTIFACT_STORE: "default"}
    )
    try:
        zenml_client.activate_stack(stack)
        code = main(["schedule", "install", "--cron", "@daily", "--crontab-file", str(tmp_path / "crontab"), "--json"])
        assert code == 0 and json.loads(capsys.readouterr().out)["config"] == str(
            ROOT.resolve() / "configs" / "schedule.yaml"
        )
    finally:
        zenml_client.activate_stack(STACK)
        zenml_client.delete_stack(stack)
