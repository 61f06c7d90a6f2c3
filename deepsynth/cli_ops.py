"""Operations commands: ``deepsynth stack register RECIPE`` and ``deepsynth schedule install``.

Attached to the main group in :mod:`deepsynth.cli`. ZenML is imported inside the commands only,
so ``deepsynth --help`` stays instant.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from deepsynth.errors import ConfigError


@click.group()
def stack() -> None:
    """Register the ZenML stacks described in configs/stacks/*.yaml."""


@stack.command("register")
@click.argument("recipe")
@click.option("--activate", is_flag=True, help="Make it the active stack afterwards.")
@click.option("--check", "check_only", is_flag=True, help="Only validate the recipe (flavors, configuration, environment); register nothing.")
def stack_register(recipe: str, activate: bool, check_only: bool) -> None:
    """Register (or update) the stack that RECIPE describes: a name in configs/stacks/ or a YAML path.

    ${VAR} values are read from the environment now; {{secret.key}} values stay ZenML secret references.
    """
    from pipelines.stack import prepare_environment

    prepare_environment()
    from pipelines import stacks

    parsed = stacks.load_recipe(recipe)
    if check_only:
        stacks.check_recipe(parsed)
        click.echo(f"{parsed.source}: ok ({', '.join(f'{c.type}={c.flavor}' for c in parsed.components)})")
        return
    click.echo(json.dumps(stacks.register(parsed, activate=activate), indent=2))


@click.group()
def schedule() -> None:
    """Scheduled retraining on this machine (cron), for stacks whose orchestrator cannot schedule."""


@schedule.command("install")
@click.option("--cron", "cron", required=True, metavar="EXPR", help='Cron expression, e.g. "0 3 * * 1" (Mondays 03:00).')
@click.option("--config", "config_path", default="configs/schedule.yaml", show_default=True, type=click.Path(dir_okay=False), help="Run configuration the scheduled run uses.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Config override passed on to `deepsynth run`. Repeatable.")
@click.option("--name", default="retrain", show_default=True, help="Entry name; installing the same name again replaces it.")
@click.option("--print", "print_only", is_flag=True, help="Print the crontab line; install nothing.")
@click.option("--crontab-file", type=click.Path(dir_okay=False), envvar="DEEPSYNTH_CRONTAB_FILE", help="Write this file instead of the user's crontab (env DEEPSYNTH_CRONTAB_FILE).")
def schedule_install(cron: str, config_path: str, overrides: tuple[str, ...], name: str, print_only: bool, crontab_file: str | None) -> None:
    """Install a crontab entry that runs `deepsynth run --config CONFIG` on schedule.

    The config is checked now; the entry sets schedule.cron=null (cron itself is the schedule).
    """
    from deepsynth.run_config import load_run_config
    from deepsynth.scheduling import CronJob, install

    extra = tuple(overrides) + ("schedule.cron=null",)
    load_run_config(config_path, list(extra))  # fail now, not at 3 am
    job = CronJob(cron=cron, config=Path(config_path), workdir=Path.cwd(), name=name, overrides=extra)
    if print_only:
        click.echo(job.entry())
        return
    entry = install(job, Path(crontab_file) if crontab_file else None)
    click.echo(f"installed in {crontab_file or 'the crontab of this user'}:\n{entry}")


__all__ = ["stack", "schedule", "ConfigError"]
