"""Documents in (ingest), rendered datasets out, and the job-based dataset-generation API."""

from deepsynth.data.generator import IncrementalDatasetGenerator, StateManager

__all__ = ["IncrementalDatasetGenerator", "StateManager"]
