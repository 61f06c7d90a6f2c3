"""ZenML pipelines over the deepsynth library."""
