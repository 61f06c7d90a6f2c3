"""DeepSynth Studio: a management API and browser UI for configs, runs, the registry, merging and a playground.

``deepsynth studio`` (or ``python -m deepsynth_cli.studio``) serves both from one FastAPI process; see
docs/studio.md. The click command is :data:`studio`.
"""

from deepsynth_cli.studio.command import studio

__all__ = ["studio"]
