"""``deepsynth serve``: one base model, the named adapters on it, an HTTP API (see README "Serving")."""

from __future__ import annotations

import click

from deepsynth_cli.output import Command, echo, echo_json, json_option

_OVERRIDES = (
    "host",
    "port",
    "device",
    "max_batch_size",
    "max_wait_ms",
    "poll_interval_s",
    "max_loras",
    "adapter_root",
    "docs",
)


@click.command(cls=Command)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="[NAME=]REF",
    help="An adapter to serve: models:/NAME@ALIAS, models:/NAME/VERSION, an export folder or zip; "
    "repeat for several (all on one base model). NAME= sets the name requests use.",
)
@click.option(
    "--run",
    "runs",
    multiple=True,
    metavar="RUN",
    help="Serve every adapter a training run registered (a multi-adapter run gives one per variant), "
    "by pipeline run name or id; repeatable, and combines with --model.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML with a serve section (configs/serving/serve.yaml); the options below override it.",
)
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="TCP port (default 8080; 0: any free port).")
@click.option("--device", default=None, help="cpu or cuda.")
@click.option("--max-batch-size", type=int, default=None, help="Requests decoded together.")
@click.option("--max-wait-ms", type=float, default=None, help="How long a forming batch waits for its next request.")
@click.option("--poll-interval-s", type=float, default=None, help="Seconds between registry alias checks (0: off).")
@click.option("--max-loras", type=int, default=None, help="Adapters resident at once (least recently used evicted).")
@click.option(
    "--allow-model",
    "allow_model",
    multiple=True,
    metavar="NAME",
    help="A registered model name requests may load on demand (model: NAME@ALIAS or NAME/VERSION); repeatable.",
)
@click.option(
    "--allow-runtime-lora-updates",
    "allow_runtime_lora_updates",
    is_flag=True,
    default=None,
    help="Enable POST /v1/load_lora_adapter and /v1/unload_lora_adapter (off by default).",
)
@click.option(
    "--adapter-root",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder whose packages load_lora_adapter may load (else registry references only).",
)
@click.option("--docs/--no-docs", "docs", default=None, help="Serve /docs and /openapi.json (on by default).")
@click.option("--access-log", is_flag=True, help="Log one line per HTTP request on stderr (off by default).")
@json_option
def serve(
    models: tuple[str, ...],
    runs: tuple[str, ...],
    config_path: str | None,
    access_log: bool,
    as_json: bool,
    allow_model: tuple[str, ...],
    allow_runtime_lora_updates: bool | None,
    **options: object,
) -> None:
    """Serve registered or packaged adapters over HTTP until interrupted (Ctrl-C / SIGTERM).

    Prints the URL and the adapters once the server accepts requests (one JSON document with --json).
    The --model adapters are pinned (never evicted). Besides /v1/summarize it speaks OpenAI's API
    (/v1/models, /v1/completions, /v1/chat/completions; model = adapter) and exports /metrics.
    Set DEEPSYNTH_API_TOKEN to require "Authorization: Bearer <token>" on every /v1 endpoint. Registry
    URIs resolve through MLFLOW_TRACKING_URI when set, else through the active ZenML stack's tracker.
    """
    import dataclasses

    from deepsynth.errors import ConfigError
    from deepsynth.serving.config import ServeConfig, api_token

    config = ServeConfig.from_yaml(config_path) if config_path else ServeConfig()
    overrides = {k: v for k, v in options.items() if k in _OVERRIDES and v is not None}
    if allow_model:
        overrides["allow_model"] = [*config.allow_model, *allow_model]
    if allow_runtime_lora_updates:
        overrides["allow_runtime_lora_updates"] = True
    try:
        config = dataclasses.replace(config, **overrides)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if runs:
        models = (*models, *_registered_by(runs))
    if not models:
        raise ConfigError("nothing to serve: give --model REF or --run RUN")
    from deepsynth.serving.slots import parse_model_option

    registry_refs = [ref for _name, ref in map(parse_model_option, models) if ref.startswith("models:/")]
    if registry_refs or config.allow_model:
        from deepsynth_cli.models import point_mlflow_at_registry

        point_mlflow_at_registry(*registry_refs)  # MLFLOW_*_URI when set, else the active stack's; refs checked first
    from deepsynth.serving.http import HttpServer, bind_socket
    from deepsynth.serving.server import ModelServer

    try:
        sock = bind_socket(config.host, config.port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc}") from None
    if config.host not in ("127.0.0.1", "::1", "localhost") and not api_token():
        click.echo(
            f"warning: listening on {config.host} without DEEPSYNTH_API_TOKEN: anyone who reaches it can "
            "use and change the server",
            err=True,
        )
    server = ModelServer(config).start(models)
    http = HttpServer(server, sock, log_level="info", access_log=access_log)
    summary = {
        "url": http.url,
        "docs": f"{http.url}/docs" if config.docs else None,
        "metrics": f"{http.url}/metrics",
        "adapters": [s.info() for s in server.holder.slots()],
    }
    if as_json:
        echo_json(summary)
    else:
        echo(f"serving on {summary['url']} (OpenAPI docs: {summary['docs'] or 'off'}; metrics: {summary['metrics']})")
        for info in summary["adapters"]:
            echo(f"  {info['name']}: version {info['version'] or '-'}  sha256 {info['sha256'][:12]}")
    stopped = _stop_on_signals()
    try:
        http.run()  # returns after a graceful shutdown on SIGINT / SIGTERM
    finally:
        server.stop()
    click.echo(f"stopped ({', '.join(stopped) or 'server exited'})", err=True)


def _stop_on_signals() -> list[str]:
    """Make SIGINT and SIGTERM a clean stop (exit 0): uvicorn shuts down, then re-raises them to these handlers."""
    import signal

    received: list[str] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _frame: received.append(signal.Signals(number).name))
    return received


def _registered_by(runs: tuple[str, ...]) -> list[str]:
    """``NAME=models:/MODEL/VERSION`` of every adapter the training runs ``runs`` registered."""
    from deepsynth_cli.logs import import_zenml
    from pipelines.local_stack import prepare_environment
    from pipelines.stores import require_ready

    prepare_environment()
    require_ready()
    import_zenml()
    from pipelines.training_pipeline import adapters_of_run

    return [f"{name}={ref}" for run in runs for name, ref in adapters_of_run(run)]
