"""Render a whole document set into a rendered dataset on disk, streaming."""

from __future__ import annotations

import os
from typing import Any, Iterable

from deepsynth.code_points import code_points
from deepsynth.data.rendered import RenderedDataset, RenderedDatasetWriter
from deepsynth.progress import progress_bar
from deepsynth.rendering.page_cache import PageCache
from deepsynth.rendering.config import RenderSettings
from deepsynth.rendering.renderer import render_documents, resolve_settings_chain, settings_fingerprint


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
