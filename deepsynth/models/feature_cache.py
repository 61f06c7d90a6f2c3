"""Cache of frozen vision-encoder outputs, so later epochs run only the decoder.

A page's entry is keyed by the hash of its PNG bytes, its view spec (mode sizes) and the encoder's
identity (model name, revision and a fingerprint of the vision weights): a different encoder or
resolution never reads stale features. Entries live in memory and, if a directory is given, in
safetensors files that survive the process (and a resumed run).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from deepsynth.models.vision import PageFeatures


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
        if found is None and self.directory and (self.directory / f"{key}.safetensors").is_file():
            found = PageFeatures.from_tensors(load_file(str(self.directory / f"{key}.safetensors")))
            self._memory[key] = found
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        features = self._timed(compute)
        self._memory[key] = features
        if self.directory:
            tmp = self.directory / f".{key}.{os.getpid()}.tmp"
            save_file({k: v.contiguous() for k, v in features.tensors().items()}, str(tmp))
            tmp.replace(self.directory / f"{key}.safetensors")
        return features

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
        return {"feature_cache_hits": self.hits, "feature_cache_misses": self.misses, "feature_cache_entries": len(self),
                "encoder_seconds": round(self.encoder_seconds, 4)}
