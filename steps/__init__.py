"""Thin ZenML steps: each takes parameters, calls deepsynth, returns annotated outputs."""

from pathlib import Path

from zenml.utils import source_utils

# The project root is the source root whatever the entry point (the `deepsynth` console script,
# `python -m deepsynth_cli`, a step container): the steps' cache policies resolve their code
# dependencies when their modules are imported, against whatever root is set at that moment.
source_utils.set_custom_source_root(str(Path(__file__).resolve().parents[1]))

import materializers  # noqa: E402,F401  (registers the project's materializers with ZenML)
