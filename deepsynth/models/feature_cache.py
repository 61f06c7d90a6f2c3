"""Cache of frozen vision-encoder outputs, so later epochs run only the decoder.

A page's entry is keyed by the hash of its PNG bytes, its view spec (mode sizes) and the encoder's
identity (model name, revision and a fingerprint of the vision weights): a different encoder or
resolution never reads stale features. Entries live in memory and, if a directory is given, in
safetensors files that survive the process (and a resumed run).

A file on disk carries its key and a sha256 of its tensors in the safetensors metadata; one that is
unreadable, damaged or filed under another key is dropped with a warning and computed again. Files
appear atomically (a unique temporary file, then ``os.replace``), so concurrent writers of one entry
(two training ranks, two runs) are harmless: the last complete copy wins, and readers never see a
partial one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from deepsynth.models.vision import PageFeatures

logger = logging.getLogger(__name__)


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 of named tensors: names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


class FeatureCache:
    """Memory (and optional disk) cache of :class:`PageFeatures`.

    Args:
        encoder_identity: Identity of the frozen encoder (see :func:`deepsynth.models.vision.vision_fingerprint`).
        directory: Optional folder for safetensors copies of the entries.
        enabled: When false every lookup computes (the uncached baseline).
    """

    def __init__(self, encoder_identity: str, directory: str | os.PathLike | None = None, enabled: bool = True):
        self.encoder_identity = encoder_identity
        self.directory = Path(directory) / encoder_identity if directory else None
        self.enabled = enabled
        self._memory: dict[str, PageFeatures] = {}
        self.hits = 0
        self.misses = 0
        self.encoder_seconds = 0.0  # wall time spent running the encoder (its share of step time)
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)

    def key(self, png: bytes, view: str) -> str:
        """Cache key of one page image seen through one view spec."""
        digest = hashlib.sha256(png)
        digest.update(view.encode())
        digest.update(self.encoder_identity.encode())
        return digest.hexdigest()

    def get_or_compute(self, png: bytes, view: str, compute: Callable[[], PageFeatures]) -> PageFeatures:
        """Return the cached features of a page, computing (and storing) them on a miss.

        Args:
            png: The page's PNG bytes.
            view: A string describing the preprocessing (mode sizes).
            compute: Runs the encoder on the page.

        Returns:
            The page's :class:`PageFeatures`.
        """
        if not self.enabled:
            self.misses += 1
            return self._timed(compute)
        key = self.key(png, view)
        found = self._memory.get(key)
        if found is None and self.directory:
            found = self._read(key)
            if found is not None:
                self._memory[key] = found
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        features = self._timed(compute)
        self._memory[key] = features
        if self.directory:
            self._write(key, features)
        return features

    def _read(self, key: str) -> PageFeatures | None:
        """The entry's features from disk if its file exists and passes its checks; else ``None``."""
        path = self.directory / f"{key}.safetensors"
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
            if meta.get("key") != key:
                raise ValueError(f"it was written for key {str(meta.get('key'))[:64]}")
            if meta.get("sha256") != tensors_sha256(tensors):
                raise ValueError("its tensors do not match their sha256 (damaged)")
            return PageFeatures.from_tensors(tensors)
        except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("%s: feature cache entry dropped, the features are computed again: %s", path, exc)
            path.unlink(missing_ok=True)
            return None

    def _write(self, key: str, features: PageFeatures) -> None:
        tensors = {k: v.detach().cpu().contiguous() for k, v in features.tensors().items()}
        meta = {"key": key, "sha256": tensors_sha256(tensors), "encoder": self.encoder_identity}
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.directory)
        os.close(fd)
        try:
            os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; entries are as readable as any other file
            save_file(tensors, tmp, metadata=meta)
            os.replace(tmp, self.directory / f"{key}.safetensors")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _timed(self, compute: Callable[[], PageFeatures]) -> PageFeatures:
        start = time.perf_counter()
        features = compute()
        if any(t.is_cuda for t in features.tensors().values()):
            torch.cuda.synchronize()  # CUDA runs asynchronously: count the encoder's work, not its launch
        self.encoder_seconds += time.perf_counter() - start
        return features

    def __len__(self) -> int:
        return len(self._memory)

    def stats(self) -> dict[str, float]:
        """Hits, misses, entries held in memory, and seconds spent in the encoder."""
        return {
            "feature_cache_hits": self.hits,
            "feature_cache_misses": self.misses,
            "feature_cache_entries": len(self),
            "encoder_seconds": round(self.encoder_seconds, 4),
        }
