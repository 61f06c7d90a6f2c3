"""The ``deepsynth`` command line: the application shell over :mod:`pipelines` and :mod:`deepsynth`.

One module per command group (:mod:`~deepsynth_cli.runs`, :mod:`~deepsynth_cli.render`,
:mod:`~deepsynth_cli.models`, :mod:`~deepsynth_cli.summarize`, :mod:`~deepsynth_cli.stack`,
:mod:`~deepsynth_cli.schedule`), named in :mod:`~deepsynth_cli.app` and imported when their command
runs (a command loads its own module only); printing
lives in :mod:`~deepsynth_cli.output`. Heavy libraries are imported inside commands so
``--help`` is instant. Run it as ``deepsynth`` or ``python -m deepsynth_cli``.
"""

from deepsynth_cli.app import cli, entry_point, main

__all__ = ["cli", "entry_point", "main"]
