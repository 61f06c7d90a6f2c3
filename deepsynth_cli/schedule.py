"""``deepsynth schedule install|list|remove|fire``: scheduled retraining through this machine's cron."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import click

from deepsynth.errors import DeepSynthError
from deepsynth_cli.output import Group, echo, echo_json, json_option

crontab_option = click.option(
    "--crontab-file",
    type=click.Path(dir_okay=False),
    envvar="DEEPSYNTH_CRONTAB_FILE",
    help="Use this file instead of the user's crontab (env DEEPSYNTH_CRONTAB_FILE).",
)


@click.group(cls=Group)
def schedule() -> None:
    """Scheduled retraining on this machine (cron), for stacks whose orchestrator cannot schedule."""


@schedule.command("install")
@click.option(
    "--cron", "cron", required=True, metavar="EXPR", help='Cron expression, e.g. "0 3 * * 1" (Mondays 03:00).'
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Run configuration of each firing. Default: configs/schedule.yaml when the active stack is the one it "
    "names, else configs/schedule-local.yaml (the local stack).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Config override passed on to `deepsynth run`. Repeatable.",
)
@click.option(
    "--name", default="retrain", show_default=True, help="Entry name; installing the same name again replaces it."
)
@click.option("--print", "print_only", is_flag=True, help="Print the crontab line; install nothing.")
@crontab_option
@json_option
def schedule_install(
    cron: str,
    config_path: str | None,
    overrides: tuple[str, ...],
    name: str,
    print_only: bool,
    crontab_file: str | None,
    as_json: bool,
) -> None:
    """Install a crontab entry that runs `deepsynth run --config CONFIG` on schedule, from this directory.

    The config is checked now, including that its deployment.stack is registered in this DeepSynth
    home; the entry sets schedule.cron=null (cron itself is the schedule). A firing while the
    previous one still runs is skipped; output is appended to <home>/logs/schedule-NAME.log.
    """
    from pipelines import scheduling
    from pipelines.config_loading import load_run_config

    extra = tuple(overrides) + ("schedule.cron=null",)
    config = Path(config_path) if config_path else scheduling.default_config(Path.cwd(), scheduling.active_stack())
    run_config = load_run_config(config, list(extra))  # fail now, not at 3 am
    scheduling.check_stack(run_config.deployment.stack, config)
    job = scheduling.CronJob(cron=cron, config=config, workdir=Path.cwd(), name=name, overrides=extra)
    entry = job.entry() if print_only else scheduling.install(job, Path(crontab_file) if crontab_file else None)
    where = None if print_only else (crontab_file or "the crontab of this user")
    if as_json:
        echo_json({"entry": entry, "config": str(config.resolve()), "installed_in": where})
    else:
        echo(entry if print_only else f"installed in {where}:\n{entry}")


@schedule.command("list")
@crontab_option
@json_option
def schedule_list(crontab_file: str | None, as_json: bool) -> None:
    """List the installed DeepSynth entries: name, cron expression, config and log file."""
    from pipelines.scheduling import parse_entries, read_crontab

    entries = parse_entries(read_crontab(Path(crontab_file) if crontab_file else None))
    if as_json:
        echo_json(entries)
    elif not entries:
        echo("no DeepSynth schedule entries")
    else:
        for entry in entries:
            echo(f"{entry['name']}\t{entry['cron']}\t{entry['config']}\tlog: {entry['log_file']}")


@schedule.command("remove")
@click.argument("name")
@crontab_option
@json_option
def schedule_remove(name: str, crontab_file: str | None, as_json: bool) -> None:
    """Remove the entry NAME (other crontab lines are kept)."""
    from pipelines.scheduling import remove

    removed = remove(name, Path(crontab_file) if crontab_file else None)
    if as_json:
        echo_json({"removed": removed})
    else:
        echo(f"removed {name}: {removed['cron']} {removed['config']}")


@schedule.command("fire")
@click.argument("name")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Run configuration.")
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Config override passed on to `deepsynth run`."
)
def schedule_fire(name: str, config_path: str, overrides: tuple[str, ...]) -> None:
    """What an entry runs when cron fires it: `deepsynth run` under the entry NAME's lock.

    While the previous firing of NAME still runs, this one is skipped (exit 0) with a line on stderr.
    The exit code is the run's.
    """
    from deepsynth.paths import deepsynth_home
    from pipelines.scheduling import FiringBusy, deepsynth_executable, firing_lock, lock_path

    argv = [deepsynth_executable(), "run", "--config", config_path, *sum((["--set", s] for s in overrides), [])]
    lock = lock_path(deepsynth_home(), name)

    def say(message: str) -> None:
        click.echo(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} schedule {name}: {message}", err=True)

    try:
        with firing_lock(lock) as held:
            say(f"firing: {' '.join(argv[1:])}")
            code = subprocess.run(argv, pass_fds=(held.fileno(),)).returncode  # the run holds the lock too
    except FiringBusy as busy:
        say(f"skipped: the previous firing ({busy.holder}) still runs (lock {lock})")
        return
    say(f"finished, exit {code}")
    if code:
        raise FiringFailed(f"the scheduled run {name!r} exited with code {code} (its error is above)", code)


class FiringFailed(DeepSynthError):
    """A fired run failed: the firing exits with the run's own exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message, exit_code=exit_code)
