"""``deepsynth studio``: serve the Studio (API + UI) on 127.0.0.1 unless ``--host`` says otherwise."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from deepsynth_cli.output import Command


@click.command(cls=Command)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0 exposes it).")
@click.option("--port", default=8766, show_default=True, type=int, help="Port.")
@click.option(
    "--project",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False, exists=True),
    help="Project folder: its configs/ are the ones the editor reads and saves; runs start there.",
)
@click.option("--max-running", default=1, show_default=True, type=click.IntRange(1, 8), help="Jobs running at once.")
def studio(host: str, port: int, project: str, max_running: int) -> None:
    """Serve DeepSynth Studio: config editor, runs, registry, merge and playground, over a management API.

    Set DEEPSYNTH_API_TOKEN to require it on every request that changes something. OpenAPI at /docs.
    """
    import uvicorn

    from deepsynth.errors import ConfigError
    from deepsynth_cli.studio.app import Settings, create_app
    from deepsynth_cli.studio.security import TOKEN_VARIABLE
    from pipelines.local_stack import prepare_environment

    root = Path(project).resolve()
    if not (root / "configs").is_dir():
        raise ConfigError(f"--project {project}: no configs/ folder there (run the studio from the project folder)")
    home = prepare_environment()
    if host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get(TOKEN_VARIABLE):
        click.echo(
            f"warning: serving on {host} without {TOKEN_VARIABLE}: anyone who reaches it can change things", err=True
        )
    click.echo(f"DeepSynth Studio on http://{host}:{port}/ (project {root}, home {home})", err=True)
    app = create_app(Settings(project=root, home=home, max_running=max_running))
    uvicorn.run(app, host=host, port=port, log_level="warning")
    sys.stdout.flush()
