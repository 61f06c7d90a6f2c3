"""Documents in (ingest), rendered datasets out; the seed's dataset-generation API."""

from deepsynth.data.generator import IncrementalDatasetGenerator, StateManager

__all__ = ["IncrementalDatasetGenerator", "StateManager"]
