"""The Studio's FastAPI app: the management API under ``/api`` and the pages that use it.

Mutations (save a config, start or cancel a run, promote, merge) depend on
:func:`~deepsynth_cli.studio.security.require_token`; everything else reads. OpenAPI is at ``/docs``,
served from the installed Swagger UI (:func:`deepsynth.api_docs.mount_offline_docs`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from deepsynth.api_docs import mount_offline_docs
from deepsynth.errors import DeepSynthError
from deepsynth_cli.studio import configs, pages, registry_views
from deepsynth_cli.studio.jobs import Jobs
from deepsynth_cli.studio.security import check_name, require_token

STATIC = Path(__file__).parent / "static"
#: ``NAME/VERSION`` or ``NAME@ALIAS``: how requests name a registered version.
VERSION_REF = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})(?:/(\d{1,9})|@([A-Za-z0-9_-]{1,64}))$")
MERGE_METHODS = ("linear", "ties", "dare_linear", "cat")


@dataclass
class Settings:
    """Where the Studio works: the project (its ``configs/``), the DeepSynth home, and jobs at once."""

    project: Path
    home: Path
    max_running: int = 1


class ConfigEdit(BaseModel):
    config: str = Field(description="A run configuration in configs/, by name (quickstart)")
    values: dict[str, Any] = Field(default_factory=dict, description="Changed keys: dotted key → value")


class SaveRequest(ConfigEdit):
    name: str = Field(description="New file name under configs/ (without .yaml)")


class PromoteRequest(BaseModel):
    alias: str = Field("champion", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    reason: str = Field(description="Why; recorded on the version as the promotion_reason tag")


class MergeRequest(BaseModel):
    sources: list[str] = Field(description="Versions to merge, NAME/VERSION or NAME@ALIAS", min_length=2)
    weights: list[float] | None = None
    method: str = "linear"
    density: float | None = None
    name: str | None = Field(None, description="Registered model name of the result (default: the first source's)")
    config: str = Field("quickstart", description="Config whose evaluate section scores the merge")


class PlaygroundRequest(BaseModel):
    versions: list[str] = Field(min_length=1, max_length=2, description="One or two versions, NAME/VERSION")
    text: str | None = Field(None, max_length=200_000)
    images: list[str] | None = Field(None, max_length=16, description="Page images as base64 PNG/JPEG")


def version_ref(ref: str) -> str:
    """A registry reference as ``NAME/VERSION`` or ``NAME@ALIAS``; HTTP 400 for anything else (a path, say)."""
    if not VERSION_REF.fullmatch(ref or ""):
        raise HTTPException(400, f"{ref!r}: name a registered version as NAME/VERSION or NAME@ALIAS")
    return ref


class Playground:
    """Loaded summarizers by version (the two most recent stay loaded)."""

    def __init__(self, home: Path):
        self.home, self.loaded, self.lock = home, {}, threading.Lock()

    def summarize(self, ref: str, text: str | None, images: list[bytes] | None) -> str:
        from deepsynth.inference.summarizer import Summarizer
        from deepsynth.registry.refs import ModelRef

        with self.lock:
            if ref not in self.loaded:
                registry_views.registry()
                summarizer = Summarizer.load(ModelRef.parse(f"models:/{ref}"), home=self.home)
                self.loaded[ref] = summarizer
                while len(self.loaded) > 2:
                    self.loaded.pop(next(iter(self.loaded))).close()
            summarizer = self.loaded[ref]
            return summarizer.summarize_pages(images) if images else summarizer.summarize_text(text or "")


def create_app(settings: Settings) -> FastAPI:
    """The Studio app for ``settings`` (jobs under ``<home>/studio/jobs``)."""
    configs_dir = settings.project / "configs"
    jobs = Jobs(settings.home / "studio" / "jobs", settings.project, settings.max_running)
    playground = Playground(settings.home)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        jobs.tick()
        jobs.start_background()
        yield
        jobs.stop()

    app = FastAPI(
        title="DeepSynth Studio",
        description="LoRA configuration, runs, registry, merging and a playground (docs/studio.md).",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.jobs = jobs
    mount_offline_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    mutation = [Depends(require_token)]

    @app.exception_handler(DeepSynthError)
    async def deepsynth_error(_request, exc: DeepSynthError):
        from fastapi.responses import JSONResponse

        status = 422 if exc.exit_code == 2 else 500
        return JSONResponse({"detail": str(exc), "exit_code": exc.exit_code}, status_code=status)

    # --- configuration ---
    @app.get("/api/knobs", tags=["configs"])
    def knobs() -> list[dict[str, Any]]:
        """Every key of a run configuration with its type, default and help (the configuration reference)."""
        return configs.knob_sections()

    @app.get("/api/presets", tags=["configs"])
    def list_presets() -> list[dict[str, Any]]:
        """The LoRA presets and the values each sets."""
        return configs.presets()

    @app.get("/api/presets/{name}", tags=["configs"])
    def show_preset(name: str) -> dict[str, Any]:
        """One LoRA preset."""
        found = [p for p in configs.presets() if p["name"] == name]
        if not found:
            raise HTTPException(404, f"preset {name!r}: one of {[p['name'] for p in configs.presets()]}")
        return found[0]

    @app.get("/api/configs", tags=["configs"])
    def list_configs() -> list[str]:
        """The run configurations in configs/."""
        return configs.config_names(configs_dir)

    @app.get("/api/configs/{name}", tags=["configs"])
    def show_config(name: str) -> dict[str, Any]:
        """Every key's value in configs/NAME.yaml (defaults filled in)."""
        return {"name": name, "values": configs.values(configs.config_path(configs_dir, name))}

    @app.post("/api/configs/validate", tags=["configs"])
    def validate(edit: ConfigEdit) -> dict[str, Any]:
        """The pre-flight checks of `deepsynth run --config configs/CONFIG.yaml --set KEY=VALUE ...`."""
        return configs.validate(configs.config_path(configs_dir, edit.config), edit.values)

    @app.post("/api/configs/estimate", tags=["configs"])
    def estimate(edit: ConfigEdit) -> dict[str, Any]:
        """Trainable parameters (exact) and full-size weight memory for LoRA, QLoRA-8 and QLoRA-4."""
        return configs.estimate(configs.config_path(configs_dir, edit.config), edit.values)

    @app.post("/api/configs/save", tags=["configs"], dependencies=mutation)
    def save(request: SaveRequest) -> dict[str, Any]:
        """Save the edited config as configs/NAME.yaml (a new file; checked first)."""
        return configs.save(configs_dir, request.config, request.values, request.name)

    # --- runs ---
    @app.post("/api/runs", tags=["runs"], dependencies=mutation, status_code=201)
    def start_run(edit: ConfigEdit) -> dict[str, Any]:
        """Queue `deepsynth run` for the edited config (checked first: HTTP 422 with the key at fault)."""
        path = configs.config_path(configs_dir, edit.config)
        checked = configs.validate(path, edit.values)
        if not checked["ok"]:
            raise HTTPException(422, checked["errors"][0])
        items = configs.overrides(edit.values)
        job_id = jobs.new_id()
        run_name = f"studio-{job_id}"
        argv = [sys.executable, "-m", "deepsynth_cli", "run", "--config", str(path.relative_to(settings.project))]
        for item in [*items, f"run_name={run_name}"]:
            argv += ["--set", item]
        argv += ["--json", "-vv"]  # -vv: progress messages on stderr, the job's log
        return jobs.submit(
            job_id, "run", f"run {edit.config}", argv, config=edit.config, overrides=items, run_name=run_name
        )

    @app.get("/api/runs", tags=["runs"])
    def list_runs() -> list[dict[str, Any]]:
        """Every Studio job (runs and merges), newest first."""
        return jobs.all()

    @app.get("/api/runs/{job_id}", tags=["runs"])
    def run_status(job_id: str) -> dict[str, Any]:
        """A job: state, exit code, result; for a pipeline run each step and the loss so far (MLflow)."""
        job = jobs.get(check_name(job_id, "run"))
        if job is None:
            raise HTTPException(404, f"run {job_id!r}: no such Studio job")
        if job.get("run_name") and job["state"] != "queued":
            from deepsynth_cli.studio.live import run_view

            job["live"] = run_view(job["run_name"])
        return job

    @app.get("/api/runs/{job_id}/log", tags=["runs"])
    def run_log(job_id: str, lines: int = 200) -> dict[str, str]:
        """The last lines of the job's log (stderr)."""
        return {"log": jobs.log_tail(check_name(job_id, "run"), max(1, min(lines, 5000)))}

    @app.post("/api/runs/{job_id}/cancel", tags=["runs"], dependencies=mutation)
    def cancel_run(job_id: str) -> dict[str, Any]:
        """SIGTERM to a running job (training checkpoints, exit 143, rerun resumes); a queued job is dropped."""
        job = jobs.cancel(check_name(job_id, "run"))
        if job is None:
            raise HTTPException(404, f"run {job_id!r}: no such Studio job")
        return job

    # --- registry ---
    @app.get("/api/models", tags=["models"])
    def list_models() -> list[dict[str, Any]]:
        """Registered models with their versions, aliases and metrics."""
        return registry_views.list_models()

    @app.get("/api/models/{name}/versions/{version}", tags=["models"])
    def show_version(name: str, version: str) -> dict[str, Any]:
        """One version (VERSION may be a number or @ALIAS)."""
        return registry_views.show(version_ref(_ref(name, version)))

    @app.get("/api/compare", tags=["models"])
    def compare(a: str, b: str) -> dict[str, Any]:
        """Two versions side by side: metrics (B − A), config and data differences."""
        return registry_views.compare(version_ref(a), version_ref(b))

    @app.post("/api/models/{name}/versions/{version}/promote", tags=["models"], dependencies=mutation)
    def promote(name: str, version: str, request: PromoteRequest) -> dict[str, Any]:
        """Point an alias at the version, recording the reason on it."""
        version_ref(f"{name}/{version}")
        return registry_views.promote(name, version, request.alias, request.reason)

    @app.get("/api/models/{name}/versions/{version}/download", tags=["models"])
    def download(name: str, version: str) -> FileResponse:
        """The version's export package (verified against its manifest) as a zip."""
        ref = version_ref(_ref(name, version))
        archive = registry_views.download_zip(ref)
        return FileResponse(
            archive,
            filename=f"{name}-{version.lstrip('@')}.zip",
            background=BackgroundTask(shutil.rmtree, archive.parent, ignore_errors=True),
        )

    # --- adapters ---
    @app.post("/api/adapters/merge", tags=["adapters"], dependencies=mutation, status_code=201)
    def merge(request: MergeRequest) -> dict[str, Any]:
        """Queue a merge: a verified package, evaluated on the held-out split, registered with its parents as tags."""
        sources = [version_ref(s) for s in request.sources]
        if request.method not in MERGE_METHODS:
            raise HTTPException(422, f"method: {request.method!r} is not one of {list(MERGE_METHODS)}")
        from deepsynth.errors import ConfigError
        from deepsynth.merge import check_merge

        job_out = settings.home / "studio" / "merges"
        try:
            weights = check_merge(
                [f"models:/{s}" for s in sources],
                request.weights,
                job_out / "_check",
                method=request.method,
                density=request.density,
            )
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from None
        name = check_name(request.name or VERSION_REF.fullmatch(sources[0]).group(1), "name")
        config = configs.config_path(configs_dir, request.config)
        job_id = jobs.new_id()
        spec = {
            "sources": sources,
            "weights": weights,
            "method": request.method,
            "density": request.density,
            "name": name,
            "config": str(config),
            "out": str(job_out / job_id),
        }
        argv = [sys.executable, "-m", "deepsynth_cli.studio.merge_job", json.dumps(spec)]
        return jobs.submit(job_id, "merge", f"merge {' + '.join(sources)}", argv, spec=spec)

    # --- playground ---
    @app.post("/api/playground", tags=["playground"])
    def summarize(request: PlaygroundRequest) -> dict[str, Any]:
        """Summarize a text or page images with one or two versions side by side."""
        if not request.text and not request.images:
            raise HTTPException(422, "give a text or page images")
        images = None
        if request.images:
            try:
                images = [base64.b64decode(i.split(",", 1)[-1], validate=True) for i in request.images]
            except (binascii.Error, ValueError):
                raise HTTPException(422, "images: not base64") from None
        refs = [version_ref(v) for v in request.versions]
        results = []
        for ref in refs:
            try:
                results.append({"version": ref, "summary": playground.summarize(ref, request.text, images)})
            except Exception as exc:  # noqa: BLE001 - the MLflow lookup's "does not exist"
                if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
                    raise HTTPException(404, f"{ref}: no such registered version") from None
                raise
        return {"results": results}

    # --- pages ---
    for path, page in pages.PAGES.items():
        app.add_api_route(path, _page(page, settings, configs_dir), methods=["GET"], include_in_schema=False)
    return app


def _ref(name: str, version: str) -> str:
    return f"{name}{version}" if version.startswith("@") else f"{name}/{version}"


def _page(render, settings: Settings, configs_dir: Path):
    def handler(config: str = "quickstart") -> HTMLResponse:
        return HTMLResponse(render(configs_dir=configs_dir, config=config))

    return handler
