"""``deepsynth schedule install``: scheduled retraining through this machine's cron."""

from __future__ import annotations

from pathlib import Path

import click

from deepsynth_cli.output import Group, echo, echo_json, json_option


@click.group(cls=Group)
def schedule() -> None:
    """Scheduled retraining on this machine (cron), for stacks whose orchestrator cannot schedule."""


@schedule.command("install")
@click.option("--cron", "cron", required=True, metavar="EXPR", help='Cron expression, e.g. "0 3 * * 1" (Mondays 03:00).')
@click.option("--config", "config_path", default="configs/schedule.yaml", show_default=True, type=click.Path(dir_okay=False), help="Run configuration the scheduled run uses.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Config override passed on to `deepsynth run`. Repeatable.")
@click.option("--name", default="retrain", show_default=True, help="Entry name; installing the same name again replaces it.")
@click.option("--print", "print_only", is_flag=True, help="Print the crontab line; install nothing.")
@click.option("--crontab-file", type=click.Path(dir_okay=False), envvar="DEEPSYNTH_CRONTAB_FILE", help="Write this file instead of the user's crontab (env DEEPSYNTH_CRONTAB_FILE).")
@json_option
def schedule_install(cron: str, config_path: str, overrides: tuple[str, ...], name: str, print_only: bool,
                     crontab_file: str | None, as_json: bool) -> None:
    """Install a crontab entry that runs `deepsynth run --config CONFIG` on schedule.

    The config is checked now; the entry sets schedule.cron=null (cron itself is the schedule).
    """
    from pipelines.config_loading import load_run_config
    from pipelines.scheduling import CronJob, install

    extra = tuple(overrides) + ("schedule.cron=null",)
    load_run_config(config_path, list(extra))  # fail now, not at 3 am
    job = CronJob(cron=cron, config=Path(config_path), workdir=Path.cwd(), name=name, overrides=extra)
    entry = job.entry() if print_only else install(job, Path(crontab_file) if crontab_file else None)
    where = None if print_only else (crontab_file or "the crontab of this user")
    if as_json:
        echo_json({"entry": entry, "installed_in": where})
    else:
        echo(entry if print_only else f"installed in {where}:\n{entry}")
