"""Render documents to DeepSeek-OCR page images: one row per (document, mode)."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import multiprocessing
import os
import sys
import types
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

from PIL import Image, ImageDraw

import deepsynth.rendering.fonts as fonts
from deepsynth.rendering.chain import FontChain, resolve_chain
from deepsynth.rendering.config import RenderSettings
from deepsynth.rendering.faces import Face
from deepsynth.rendering.layout import Line, paginate, wrap, wrap_at_most
from deepsynth.rendering.modes import PAD_GRAY, get_mode
from deepsynth.rendering.page_cache import PageCache
from deepsynth.rendering.png import encode_gray_png
from deepsynth.rendering.shaping import Shaper

INK, PAPER = 0, 255
_HASH_CHUNK = 1 << 20
#: Row fields a worker does not send back: the parent process has them (a huge text would be copied twice).
_DOCUMENT_FIELDS = ("text", "summary", "instruction", "task")


def settings_fingerprint(settings: RenderSettings, chain: FontChain) -> str:
    """Hash of everything that changes a page's pixels (not worker counts or shard sizes),
    the font chain's files included: a changed or newly installed fallback font re-renders."""
    skip = ("workers", "rows_per_shard", "modes", "page_cache", "fallback_fonts")
    visible = {k: v for k, v in asdict(settings).items() if k not in skip}
    visible["font"] = chain.fingerprint()
    return hashlib.sha256(repr(sorted(visible.items())).encode()).hexdigest()[:16]


def resolve_settings_chain(settings: RenderSettings) -> FontChain:
    """The font chain ``settings`` ask for (``render.font`` then ``render.fallback_fonts``)."""
    return resolve_chain(settings.font, settings.fallback_fonts)


class PageRenderer:
    """Lays out and draws text for one mode with one font chain."""

    def __init__(self, mode: str, settings: RenderSettings, chain: FontChain):
        self.mode = get_mode(mode)
        self.settings = settings
        width, height = self.mode.page_size
        self.size = settings.font_size or max(8, width // 48)
        self.margin = settings.margin if settings.margin is not None else width // 32
        self.line_height = max(1, round(self.size * settings.line_spacing))
        self.text_width = width - 2 * self.margin
        self.lines_per_page = (height - 2 * self.margin) // self.line_height
        self.chain = chain
        self.fast = Face(fonts.load_font(chain.primary.path, self.size, False, chain.primary.index))
        self.shaper = Shaper(chain, self.size, self.fast)

    def render(self, text: str, instruction: str | None = None) -> dict[str, Any]:
        """Render ``text`` to PNG pages; returns pages, sizes, characters drawn and truncation.

        Plain text in the primary font takes the fast path (basic layout, cached word masks);
        anything else is broken, shaped and ordered by the :class:`Shaper`.
        """
        drawn_instruction = instruction if instruction and self.settings.draw_instruction else ""
        simple = self.shaper.is_simple(text) and self.shaper.is_simple(drawn_instruction)
        widths, script = (self.fast.widths, None) if simple else (self.shaper.widths, self.shaper)
        header = wrap(drawn_instruction, widths, self.text_width, script) if drawn_instruction else []
        header_lines = len(header) + 1 if header else 0  # one blank line separates it from the text
        first_page = self.lines_per_page - header_lines
        max_pages = self.settings.max_pages
        budget = first_page + (max_pages - 1) * self.lines_per_page if max_pages and first_page > 0 else None
        lines, truncated = wrap_at_most(text, widths, self.text_width, script, budget)
        pages = paginate(lines, first_page, self.lines_per_page)
        chars_rendered = len(text) if not truncated else pages[-1][-1].end
        images = [self._draw(page, header if i == 0 else []) for i, page in enumerate(pages)]
        return {
            "pages": [encode_gray_png(img, self.settings.png_compress_level) for img in images],
            "page_width": self.mode.page_size[0],
            "page_height": self.mode.page_size[1],
            "chars_total": len(text),
            "chars_rendered": chars_rendered,
            "truncated": truncated,
            "missing_glyphs": []
            if simple
            else sorted(set(self.chain.missing_glyphs(text)) | set(self.chain.missing_glyphs(drawn_instruction))),
        }

    def _draw(self, lines: list[Line], header: list[Line]) -> Image.Image:
        """Draw a white text area as tall as its lines, padded to the page with upstream's gray."""
        width, height = self.mode.page_size
        rows = header + ([Line("", 0)] if header else []) + lines
        content_height = min(height, 2 * self.margin + max(1, len(rows)) * self.line_height)
        page = Image.new("L", (width, height), PAD_GRAY[0])
        page.paste(PAPER, (0, 0, width, content_height))
        canvas = page.im  # the core image: Image.paste's checks cost more than the paste itself
        y = self.margin
        face = self.fast
        for row in rows:
            if row.rtl or not self.shaper.is_simple(row.text):
                self.shaper.draw(canvas, row.text, row.rtl, self.margin, self.margin + self.text_width, y)
                y += self.line_height
                continue
            x = float(self.margin)
            for word in row.text.split(" "):
                if word:
                    mask, dx, dy, w, h = face.mask(word)
                    left, top = int(x) + dx, y + dy
                    canvas.paste(INK, (left, top, left + w, top + h), mask)
                x += face.widths(word) + face.space
            y += self.line_height
        if header:
            rule_y = self.margin + len(header) * self.line_height + self.line_height // 2
            ImageDraw.Draw(page).line((self.margin, rule_y, width - self.margin, rule_y), fill=160)
        return page


def document_hash(doc: dict[str, Any], mode: str, fingerprint: str) -> str:
    """Identity of one rendering: the text, instruction, mode and render settings."""
    digest = hashlib.sha256()
    for i, part in enumerate([doc["text"], doc.get("instruction") or "", mode, fingerprint]):
        if i:
            digest.update(b"\x1f")
        for start in range(0, len(part), _HASH_CHUNK):  # encoded a slice at a time: a huge text is not copied whole
            digest.update(part[start : start + _HASH_CHUNK].encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def carried_columns(doc: dict[str, Any]) -> dict[str, Any]:
    """The document's own columns a rendered row carries unchanged (:data:`_DOCUMENT_FIELDS`)."""
    return {name: doc.get(name) for name in _DOCUMENT_FIELDS}


class DocumentRenderer:
    """Renders whole documents in every configured mode (one :class:`PageRenderer` per mode)."""

    def __init__(self, settings: RenderSettings, chain: FontChain | None = None):
        self.settings = settings
        self.chain = chain or resolve_settings_chain(settings)
        self.fingerprint = settings_fingerprint(settings, self.chain)
        self._pages = {mode: PageRenderer(mode, settings, self.chain) for mode in settings.modes}

    def render(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows (see :data:`deepsynth.data.rendered.SCHEMA`) for ``doc`` in each mode."""
        rows = []
        for mode, renderer in self._pages.items():
            row = renderer.render(doc["text"], doc.get("instruction"))
            row.update(
                id=doc["id"],
                split=doc["split"],
                mode=mode,
                doc_hash=document_hash(doc, mode, self.fingerprint),
                **carried_columns(doc),
            )
            rows.append(row)
        return rows


_worker_renderer: DocumentRenderer | None = None


def _init_worker(settings: RenderSettings, chain: FontChain) -> None:
    global _worker_renderer
    _worker_renderer = DocumentRenderer(settings, chain)


def _render_in_worker(doc: dict[str, Any]) -> list[dict[str, Any]]:
    assert _worker_renderer is not None
    rows = _worker_renderer.render(doc)
    for row in rows:
        for name in _DOCUMENT_FIELDS:
            del row[name]
    return rows


def worker_count(settings: RenderSettings) -> int:
    """Processes to use: ``settings.workers`` or one per available core."""
    if settings.workers > 0:
        return settings.workers
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def render_documents(
    docs: Iterable[dict[str, Any]],
    settings: RenderSettings,
    chain: FontChain | None = None,
    cache: PageCache | None = None,
) -> Iterator[dict[str, Any]]:
    """Render ``docs`` (dicts with id, split, text, summary, instruction) and yield rows in order.

    Work is spread over :func:`worker_count` processes. Documents are fed in bounded windows so
    that at most a few dozen documents' pages are in memory at once, whatever the dataset size.
    With a ``cache``, documents whose renderings are all cached are not rendered again, and
    fresh renderings are added to it.
    """
    chain = chain or resolve_settings_chain(settings)
    fingerprint = settings_fingerprint(settings, chain)
    workers = worker_count(settings)
    pool = render_many = None  # started on the first document the cache does not hold
    try:
        iterator = iter(docs)
        while batch := list(itertools.islice(iterator, workers * 8)):
            known = [_cached_rows(doc, settings.modes, fingerprint, cache) for doc in batch]
            misses = [doc for doc, rows in zip(batch, known) if rows is None]
            if misses and render_many is None:
                pool, render_many = _start_rendering(workers, settings, chain)
            fresh = render_many(misses) if misses else iter(())
            for doc, rows in zip(batch, known):
                if rows is None:
                    rows = next(fresh)
                    for row in rows:
                        row.update(carried_columns(doc))
                        if cache:
                            cache.put(row)
                elif cache:
                    cache.served += len(rows)
                yield from rows
            if cache:
                cache.commit()
    finally:
        if pool is not None:
            pool.terminate()


def _start_rendering(workers: int, settings: RenderSettings, chain: FontChain):
    """``(pool or None, render_many)``: rendering over ``workers`` spawned processes, or in this one."""
    if workers > 1:
        context = multiprocessing.get_context("spawn")  # fork is unsafe beside ZenML/MLflow threads
        with _main_module_hidden():
            pool = context.Pool(workers, initializer=_init_worker, initargs=(settings, chain))
        return pool, lambda docs: pool.imap(_render_in_worker, docs, chunksize=2)
    local = DocumentRenderer(settings, chain)
    return None, lambda docs: map(local.render, docs)


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start spawned workers without re-importing the caller's ``__main__``.

    Spawn re-runs the main script in every child; a script without an ``if __name__ ==
    "__main__":`` guard (a README snippet pasted into a file) would then start pools in its
    children forever. The workers need nothing from ``__main__`` (their functions live here), so
    the parent shows them a bare main module while they start.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _cached_rows(
    doc: dict[str, Any], modes: list[str], fingerprint: str, cache: PageCache | None
) -> list[dict[str, Any]] | None:
    """Every mode's row of ``doc`` from the cache, or None if any is missing."""
    if cache is None:
        return None
    rows = []
    for mode in modes:
        doc_hash = document_hash(doc, mode, fingerprint)
        hit = cache.get(doc_hash)
        if hit is None:
            return None
        rows.append(
            {
                **hit,
                "id": doc["id"],
                "split": doc["split"],
                "mode": mode,
                "doc_hash": doc_hash,
                **carried_columns(doc),
            }
        )
    return rows
