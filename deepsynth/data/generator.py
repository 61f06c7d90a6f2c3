"""Rendered datasets out: a document set rendered in one streaming pass (:func:`render_dataset`), or
resumable jobs that ingest and render into a folder (the dataset-generation API):

    generator = IncrementalDatasetGenerator(StateManager("./state"))
    generator.generate_dataset("job-1", config={"source_dataset": "aclsum", "output_dir": "./out",
                                                "instruction_prompt": "Summarize this paper:",
                                                "multi_resolution": True, "resolution_sizes": ["base", "large"]})

Documents are rendered in fixed chunks, one Parquet shard each, and the job's state records
every finished chunk. A job interrupted midway continues where it stopped and renders nothing
twice; the manifest is written once every chunk is there.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from deepsynth.code_points import code_points
from deepsynth.configuration import from_dict
from deepsynth.data.config import IngestConfig
from deepsynth.data.file_names import file_stem
from deepsynth.data.ingest import ingest
from deepsynth.data.rendered import (
    FORMAT_VERSION,
    MANIFEST,
    SHARD_DIR,
    RenderedDataset,
    RenderedDatasetWriter,
    write_shard,
)
from deepsynth.errors import ConfigError
from deepsynth.progress import progress_bar
from deepsynth.rendering.config import RenderSettings
from deepsynth.rendering.page_cache import PageCache
from deepsynth.rendering.renderer import render_documents, resolve_settings_chain, settings_fingerprint

JOB_KEYS = {
    "source_dataset",
    "output_dir",
    "instruction_prompt",
    "multi_resolution",
    "resolution_sizes",
    "text_column",
    "summary_column",
    "max_documents",
    "chunk_size",
    "render",
}
# Column mappings of well-known hub datasets, so a job naming one needs no column keys.
KNOWN_DATASETS = {"cnn_dailymail": {"hf_config": "3.0.0", "text_column": "article", "summary_column": "highlights"}}


def render_dataset(
    docs: Iterable[dict[str, Any]],
    settings: RenderSettings,
    out_dir: str | os.PathLike,
    total: int | None = None,
    extra_manifest: dict[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> RenderedDataset:
    """Render every document in every configured mode into ``out_dir``.

    Args:
        docs: Dicts with id, split, text, summary and instruction (e.g. ``DocumentDataset.rows()``).
        settings: Render settings.
        out_dir: Folder to write shards and the manifest into.
        total: Number of documents, for the progress bar.
        extra_manifest: Entries added to the manifest (e.g. the source's content hash).
        cache_dir: Folder of the cross-run page cache; used when ``settings.page_cache`` is on.

    Returns:
        The rendered dataset. Its manifest records the primary font and the whole font chain
        (and the named fallback fonts that are not installed), settings, page count, truncated
        documents and documents with glyphs no font of the chain can draw (ids and code points).
    """
    chain = resolve_settings_chain(settings)
    font = chain.primary
    truncated: list[str] = []
    missing: dict[str, list[int]] = {}
    writer = RenderedDatasetWriter(out_dir, settings=vars(settings).copy(), rows_per_shard=settings.rows_per_shard)
    bar = progress_bar(total=total * len(settings.modes) if total else None, desc="render", unit="row", mininterval=1.0)
    cache = PageCache(cache_dir) if cache_dir is not None and settings.page_cache else None
    for row in render_documents(docs, settings, chain, cache):
        writer.write(row)
        if row["truncated"]:
            truncated.append(row["id"])
        if row["missing_glyphs"]:
            missing[row["id"]] = row["missing_glyphs"]
        bar.update(1)
        bar.set_postfix(pages=writer.pages_written, refresh=False)
    bar.close()
    if cache is not None:
        cache.close()
    return writer.close(
        extra={
            "rows_from_cache": cache.served if cache else 0,
            "font": {"path": font.path, "source": font.source, "name": font.name},
            "font_chain": chain.describe(),
            "fonts_not_installed": list(chain.unavailable),
            "settings_fingerprint": settings_fingerprint(settings, chain),
            "truncated": sorted(set(truncated)),
            "missing_glyph_documents": [{"id": k, "code_points": code_points(v)} for k, v in sorted(missing.items())],
            **(extra_manifest or {}),
        }
    )


class StateManager:
    """Job state kept as one JSON file per job under ``state_dir`` (written atomically)."""

    def __init__(self, state_dir: str | os.PathLike = ".deepsynth/jobs"):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def _path(self, job_id: str) -> Path:
        # A job id with '/', '..' or hundreds of characters still names one file inside state_dir.
        return self.state_dir / f"{file_stem(job_id)}.json"

    def load(self, job_id: str) -> dict[str, Any] | None:
        """The saved state of ``job_id``, or None for a new job."""
        path = self._path(job_id)
        return json.loads(path.read_text()) if path.exists() else None

    def save(self, job_id: str, state: dict[str, Any]) -> None:
        """Persist ``state`` for ``job_id`` (temp file + rename: never half-written)."""
        tmp = self._path(job_id).with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self._path(job_id))


def _ingest_config(job: dict[str, Any]) -> IngestConfig:
    source = str(job["source_dataset"])
    extra = {k: job[k] for k in ("text_column", "summary_column", "max_documents") if k in job}
    if source == "aclsum":
        return IngestConfig(source="aclsum", instruction_prompt=job.get("instruction_prompt"), **extra)
    if Path(source).suffix.lower() in (".jsonl", ".json", ".csv", ".parquet", ".ndjson"):
        return IngestConfig(source="file", path=source, instruction_prompt=job.get("instruction_prompt"), **extra)
    known = {**KNOWN_DATASETS.get(source, {}), **extra}
    return IngestConfig(source="huggingface", hf_name=source, instruction_prompt=job.get("instruction_prompt"), **known)


def _render_settings(job: dict[str, Any]) -> RenderSettings:
    settings = dict(job.get("render") or {})
    if job.get("multi_resolution"):
        settings["modes"] = list(job.get("resolution_sizes") or ["base", "large"])
    elif job.get("resolution_sizes"):
        settings["modes"] = list(job["resolution_sizes"])[:1]
    return from_dict(RenderSettings, settings, source="job config")


class IncrementalDatasetGenerator:
    """Generates rendered datasets as resumable jobs tracked by a :class:`StateManager`."""

    def __init__(self, state_manager: StateManager):
        self.state = state_manager

    def generate_dataset(
        self, job_id: str, config: dict[str, Any], on_chunk: Callable[[int, int], None] | None = None
    ) -> RenderedDataset:
        """Run (or resume) job ``job_id`` and return the rendered dataset in ``output_dir``.

        Args:
            job_id: Name of the job; its state file makes the job resumable.
            config: The job's keys: ``source_dataset`` (``aclsum``, a local file or a hub
                dataset such as ``cnn_dailymail``), ``output_dir``, ``instruction_prompt``,
                ``multi_resolution``, ``resolution_sizes``; optionally ``text_column``,
                ``summary_column``, ``max_documents``, ``chunk_size`` and a ``render`` section.
            on_chunk: Called with (chunk index, chunks in total) after each finished chunk.

        Raises:
            ConfigError: Unknown keys, or a resumed job whose configuration changed.
        """
        unknown = set(config) - JOB_KEYS
        if unknown:
            raise ConfigError(f"job {job_id}: unknown key(s) {sorted(unknown)}; known: {sorted(JOB_KEYS)}")
        for key in ("source_dataset", "output_dir"):
            if key not in config:
                raise ConfigError(f"job {job_id}: '{key}' is required")
        state = self.state.load(job_id) or {"config": config, "chunks_done": [], "status": "running"}
        if state["config"] != config:
            raise ConfigError(f"job {job_id}: its configuration changed since it started; use a new job id")
        out = Path(config["output_dir"])
        settings = _render_settings(config)
        documents = ingest(_ingest_config(config))
        chunk_size = int(config.get("chunk_size", 32))
        chunks = max(1, -(-documents.table.num_rows // chunk_size))
        rows = documents.rows()
        done = set(state["chunks_done"])
        for index in range(chunks):
            chunk = list(itertools.islice(rows, chunk_size))
            if index in done and (out / SHARD_DIR / f"part-{index:05d}.parquet").exists():
                continue
            self._render_chunk(chunk, settings, out, index)
            state["chunks_done"] = sorted(done | {index})
            done.add(index)
            self.state.save(job_id, state)
            if on_chunk:
                on_chunk(index, chunks)
        state["status"] = "completed"
        self.state.save(job_id, state)
        return _write_manifest(out, settings, chunks, documents.metadata())

    @staticmethod
    def _render_chunk(chunk: list[dict[str, Any]], settings: RenderSettings, out: Path, index: int) -> None:
        """Render one chunk of documents into shard ``index`` (written atomically)."""
        (out / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        write_shard(out / SHARD_DIR / f"part-{index:05d}.parquet", list(render_documents(chunk, settings)))


def _write_manifest(out: Path, settings: RenderSettings, chunks: int, source_meta: dict[str, Any]) -> RenderedDataset:
    """Manifest over every chunk's shard (counts read from the shards' small columns)."""
    shards = [
        f"{SHARD_DIR}/part-{i:05d}.parquet"
        for i in range(chunks)
        if (out / SHARD_DIR / f"part-{i:05d}.parquet").exists()
    ]
    per_split: Counter[str] = Counter()
    per_mode: Counter[str] = Counter()
    pages = rows = 0
    for shard in shards:
        table = pq.read_table(out / shard, columns=["split", "mode", "pages"])
        rows += table.num_rows
        per_split.update(table.column("split").to_pylist())
        per_mode.update(table.column("mode").to_pylist())
        pages += sum(len(p) for p in table.column("pages").to_pylist())
    manifest = {
        "format_version": FORMAT_VERSION,
        "settings": vars(settings).copy(),
        "rows": rows,
        "pages": pages,
        "rows_per_split": dict(sorted(per_split.items())),
        "rows_per_mode": dict(sorted(per_mode.items())),
        "shards": shards,
        "content_hash": source_meta["content_hash"],
        "source": source_meta["source"],
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return RenderedDataset(out)
