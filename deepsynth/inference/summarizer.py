"""``Summarizer``: text in, summary out, from an export directory, a zip package or a registry ``ModelRef``."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from deepsynth.errors import ConfigError
from deepsynth.inference.documents import render_text
from deepsynth.inference.generation import GenerationConfig, generate_with_stats
from deepsynth.inference.loading import LoadedModel, load_adapter_model
from deepsynth.rendering.config import RenderSettings
from deepsynth.rendering.renderer import DocumentRenderer

RENDER_SETTINGS_FILE = "render_settings.json"

logger = logging.getLogger(__name__)


def render_settings_for(directory: Path | None, mode: str | None) -> RenderSettings:
    """Render settings of the training data (``render_settings.json`` of an export), in one mode.

    Args:
        directory: The package or adapter directory.
        mode: Mode the adapter was trained on (wins over the file's first mode).

    Returns:
        Settings rendering exactly one mode, in-process.
    """
    values: dict[str, Any] = {}
    if directory is not None and (directory / RENDER_SETTINGS_FILE).is_file():
        values = json.loads((directory / RENDER_SETTINGS_FILE).read_text())
    known = {f.name for f in dataclasses.fields(RenderSettings)}
    values = {k: v for k, v in values.items() if k in known}
    modes = [mode] if mode else list(values.get("modes") or ["base"])[:1]
    return RenderSettings(**{**values, "modes": modes, "workers": 1})


def recorded_generation(directory: Path | None) -> GenerationConfig:
    """Decoding settings recorded in a package's manifest (the evaluation's), else the defaults."""
    manifest = directory / "manifest.json" if directory is not None else None
    if manifest is None or not manifest.is_file():
        return GenerationConfig()
    return GenerationConfig.from_recorded(json.loads(manifest.read_text()).get("generation"), source=str(manifest))


class PackageSource(Protocol):
    """Something that yields a verified package directory, e.g. :class:`deepsynth.registry.refs.ModelRef`.

    Inference sits below the registry: a registry reference reaches :meth:`Summarizer.load` as such an
    object, never as a ``models:/`` string this layer would have to resolve.
    """

    def local_dir(self, work_dir: str | os.PathLike, *, allow_unverified: bool = False) -> Path:
        """The verified directory to load (downloads and extraction go under ``work_dir``)."""


def resolve_ref(ref: str | os.PathLike, work_dir: str | os.PathLike, *, allow_unverified: bool = False) -> Path:
    """Turn a local package path into a verified directory.

    Args:
        ref: A zip package or an export directory (verified against its manifest), or, only with
            ``allow_unverified``, a folder without a manifest (a trainer output directory). A registry
            reference is a :class:`deepsynth.registry.refs.ModelRef` (its ``local_dir``), not a path.
        work_dir: Scratch directory for extraction.
        allow_unverified: Load a local folder that has no manifest (nothing in it is verified).

    Returns:
        The directory to load.

    Raises:
        PackageError: The package fails verification, or a folder has no manifest and no opt-in.
        ConfigError: No such path, or a ``models:/`` string (pass ``ModelRef.parse(ref)``) (exit code 2).
    """
    from deepsynth.package import MANIFEST, PackageError, open_package

    text = str(ref)
    if text.startswith("models:/"):
        raise ConfigError(
            f"{ref}: a registry reference; load it as deepsynth.registry.ModelRef.parse({text!r}) "
            "(e.g. Summarizer.load(ModelRef.parse(ref)))"
        )
    path = Path(text)
    if path.is_file():
        return open_package(path, dest=Path(work_dir) / "package")
    if path.is_dir():
        if (path / MANIFEST).is_file():
            return open_package(path)
        if not allow_unverified:
            raise PackageError(
                f"{path}: no {MANIFEST}, so nothing in it can be verified. Export it "
                "(deepsynth export) or, for a folder you trust, ask for an unverified load "
                "(allow_unverified=True; --allow-unverified on the command line)"
            )
        logger.warning("%s: loading a folder without a manifest, unverified (allow_unverified)", path)
        return path
    raise ConfigError(f"{ref}: no such export folder or zip package (nor models:/NAME/VERSION, models:/NAME@ALIAS)")


class Summarizer:
    """Renders texts like the training data, runs the adapter and returns summaries.

    Args:
        loaded: The model (see :func:`load_adapter_model`).
        render: How texts become pages.
        generation: Decoding settings (default: the ones recorded in the package).
    """

    def __init__(
        self, loaded: LoadedModel, render: RenderSettings | None = None, generation: GenerationConfig | None = None
    ):
        self.loaded = loaded
        self.render = render or render_settings_for(loaded.adapter_dir, loaded.mode)
        self.generation = generation or recorded_generation(loaded.adapter_dir)
        self._renderer = DocumentRenderer(self.render)
        self._cleanup: weakref.finalize | None = None

    @classmethod
    def load(
        cls,
        ref: str | os.PathLike | PackageSource,
        *,
        home: str | os.PathLike | None = None,
        device: str = "cpu",
        generation: GenerationConfig | None = None,
        base_model: str | None = None,
        allow_unverified: bool = False,
    ) -> Summarizer:
        """Load from a local export directory, a zip package, or a registry reference.

        Packages are verified (manifest hashes, safe extraction) before anything is loaded.

        Args:
            ref: A package path, or a :class:`PackageSource` such as
                ``deepsynth.registry.ModelRef.parse("models:/NAME@ALIAS")`` (verified against the registry too).
            home: DeepSynth cache root (for the ``tiny`` base profile).
            device: ``cpu`` or ``cuda``.
            generation: Decoding settings (default: the ones recorded in the package).
            base_model: Override the base model the adapter names.
            allow_unverified: Also load a local folder without a manifest (see :func:`resolve_ref`).

        Returns:
            The summarizer.
        """
        work_dir = tempfile.mkdtemp(prefix="deepsynth-summarizer-")
        try:
            if isinstance(ref, (str, os.PathLike)):
                directory = resolve_ref(ref, work_dir, allow_unverified=allow_unverified)
            else:
                directory = ref.local_dir(work_dir, allow_unverified=allow_unverified)
            loaded = load_adapter_model(directory, base_model=base_model, home=home, device=device)
        except BaseException:
            shutil.rmtree(work_dir, ignore_errors=True)
            raise
        summarizer = cls(loaded, render_settings_for(directory, loaded.mode), generation)
        # Removed by close(), when the summarizer is collected, or at interpreter exit, whichever comes
        # first: a process that exits with the summarizer still referenced leaves nothing in the temp dir.
        summarizer._cleanup = weakref.finalize(summarizer, shutil.rmtree, work_dir, ignore_errors=True)
        return summarizer

    def render_text(self, text: str, instruction: str | None = None) -> list[bytes]:
        """The PNG pages ``text`` renders to with the training render settings."""
        return render_text(self._renderer, text, instruction)

    def summarize_texts(self, texts: Sequence[str], instruction: str | None = None) -> list[str]:
        """Render each text and summarize it.

        Args:
            texts: Plain document texts.
            instruction: Instruction (default: the one the adapter was trained with).

        Returns:
            One summary per text.
        """
        pages = [self.render_text(t, instruction) for t in texts]
        outs = generate_with_stats(
            self.loaded, pages, self.generation, instruction=instruction, mode=self.render.modes[0]
        )
        return [o.text for o in outs]

    def summarize_text(self, text: str, instruction: str | None = None) -> str:
        """Render ``text`` and return its summary."""
        return self.summarize_texts([text], instruction)[0]

    def summarize_pages(self, pages: Sequence[Any], instruction: str | None = None) -> str:
        """Summary of one document given as page images (PIL or PNG bytes) rendered in the training mode."""
        outs = generate_with_stats(
            self.loaded, [list(pages)], self.generation, instruction=instruction, mode=self.render.modes[0]
        )
        return outs[0].text

    def close(self) -> None:
        """Remove downloaded or extracted files (idempotent)."""
        if self._cleanup is not None:
            self._cleanup()
