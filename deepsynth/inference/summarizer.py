"""``Summarizer``: text in, summary out, from an export directory, a zip package or a registry URI."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepsynth.errors import DeepSynthError
from deepsynth.inference.generation import GenerationConfig, generate_with_stats
from deepsynth.inference.loading import LoadedModel, load_adapter_model
from deepsynth.rendering.config import RenderSettings
from deepsynth.rendering.renderer import DocumentRenderer

RENDER_SETTINGS_FILE = "render_settings.json"


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


def _find_package_root(root: Path) -> Path:
    hits = sorted(root.rglob("manifest.json"), key=lambda p: len(p.parts))
    if not hits:
        raise DeepSynthError(f"{root}: the downloaded model holds no export package (no manifest.json)")
    return hits[0].parent


def resolve_ref(ref: str | os.PathLike, work_dir: str | os.PathLike) -> Path:
    """Turn a model reference into a verified local package (or adapter) directory.

    Args:
        ref: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` (through the configured MLflow tracking URI),
            a zip package, an export directory (verified against its manifest) or a trainer output directory.
        work_dir: Scratch directory for downloads and extraction.

    Returns:
        The directory to load.
    """
    from deepsynth.export.package import MANIFEST, open_package

    text = str(ref)
    work_dir = Path(work_dir)
    if text.startswith("models:/"):
        import mlflow

        downloaded = Path(mlflow.artifacts.download_artifacts(artifact_uri=text, dst_path=str(work_dir / "download")))
        return open_package(_find_package_root(downloaded))
    path = Path(text)
    if path.is_file():
        return open_package(path, dest=work_dir / "package")
    if path.is_dir():
        return open_package(path) if (path / MANIFEST).is_file() else path
    raise DeepSynthError(f"{ref}: neither models:/NAME/VERSION, models:/NAME@ALIAS, a zip package nor a directory")


class Summarizer:
    """Renders texts like the training data, runs the adapter and returns summaries.

    Args:
        loaded: The model (see :func:`load_adapter_model`).
        render: How texts become pages.
        generation: Decoding settings.
    """

    def __init__(self, loaded: LoadedModel, render: RenderSettings | None = None,
                 generation: GenerationConfig | None = None):
        self.loaded = loaded
        self.render = render or render_settings_for(loaded.adapter_dir, loaded.mode)
        self.generation = generation or GenerationConfig()
        self._renderer = DocumentRenderer(self.render)
        self._work_dir: str | None = None

    @classmethod
    def load(cls, ref: str | os.PathLike, *, home: str | os.PathLike | None = None, device: str = "cpu",
             generation: GenerationConfig | None = None, base_model: str | None = None) -> "Summarizer":
        """Load from a local export directory, a zip package, or ``models:/NAME/VERSION`` / ``models:/NAME@ALIAS``.

        Packages are verified (manifest hashes, safe extraction) before anything is loaded.

        Args:
            ref: The model reference.
            home: DeepSynth cache root (for the ``tiny`` base profile).
            device: ``cpu`` or ``cuda``.
            generation: Decoding settings.
            base_model: Override the base model the adapter names.

        Returns:
            The summarizer.
        """
        work_dir = tempfile.mkdtemp(prefix="deepsynth-summarizer-")
        try:
            directory = resolve_ref(ref, work_dir)
            loaded = load_adapter_model(directory, base_model=base_model, home=home, device=device)
        except BaseException:
            shutil.rmtree(work_dir, ignore_errors=True)
            raise
        summarizer = cls(loaded, render_settings_for(directory, loaded.mode), generation)
        summarizer._work_dir = work_dir
        return summarizer

    def render_text(self, text: str, instruction: str | None = None) -> list[bytes]:
        """The PNG pages ``text`` renders to with the training render settings."""
        doc = {"id": "input", "split": "inference", "text": text, "summary": "", "instruction": instruction}
        return self._renderer.render(doc)[0]["pages"]

    def summarize_texts(self, texts: Sequence[str], instruction: str | None = None) -> list[str]:
        """Render each text and summarize it.

        Args:
            texts: Plain document texts.
            instruction: Instruction (default: the one the adapter was trained with).

        Returns:
            One summary per text.
        """
        pages = [self.render_text(t, instruction) for t in texts]
        outs = generate_with_stats(self.loaded, pages, self.generation, instruction=instruction,
                                   mode=self.render.modes[0])
        return [o.text for o in outs]

    def summarize_text(self, text: str, instruction: str | None = None) -> str:
        """Render ``text`` and return its summary."""
        return self.summarize_texts([text], instruction)[0]

    def summarize_pages(self, pages: Sequence[Any], instruction: str | None = None) -> str:
        """Summary of one document given as page images (PIL or PNG bytes) rendered in the training mode."""
        outs = generate_with_stats(self.loaded, [list(pages)], self.generation, instruction=instruction,
                                   mode=self.render.modes[0])
        return outs[0].text

    def close(self) -> None:
        """Remove downloaded or extracted files."""
        if self._work_dir:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def __del__(self) -> None:  # extracted packages can be large
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
