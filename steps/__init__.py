"""Thin ZenML steps: each takes parameters, calls deepsynth, returns annotated outputs."""

import materializers  # noqa: F401  (registers the project's materializers with ZenML)
