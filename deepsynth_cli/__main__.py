"""``python -m deepsynth_cli``: the same as the ``deepsynth`` console script."""

from deepsynth_cli.app import entry_point

entry_point()
