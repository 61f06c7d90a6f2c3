"""Where the command's diagnostics go: a log file under the home, and stderr filtered by verbosity.

Everything that is logged (ours, ZenML's, MLflow's, transformers' and Python warnings) lands in
``<home>/logs/<time>-<pid>.log`` (created on the first record). On stderr, the default shows only
the project's own warnings; ``-v`` adds third-party warnings and the messages libraries print for
people (MLflow's "Registered model … already exists. Creating a new version…"), ``-vv`` everyone's
progress messages and ``--debug`` everything. ANSI colour codes never reach a stream that is not a
terminal, nor any stream when ``NO_COLOR`` is set. Progress bars are drawn on a terminal only, or
with ``--progress`` (:mod:`deepsynth.progress` decides, for every bar).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from deepsynth.env import logging_defaults, set_defaults

#: Loggers of this project: shown on stderr at default verbosity (warnings and worse).
OWN_LOGGERS = ("deepsynth", "pipelines", "steps", "materializers", "deepsynth_cli")
#: What libraries print for people rather than log (MLflow's ``eprint``): shown from ``-v``, always in the log file.
#: Outside the ``mlflow`` hierarchy: MLflow's own handler writes into the stream that logs here, so a child of
#: ``mlflow`` would send each line back to that handler without end.
PRINTED_MESSAGES = "library_prints.mlflow"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (colours, cursor moves)."""
    return _ANSI.sub("", text)


def wants_color(stream: TextIO) -> bool:
    """Colour only on a terminal, and never with ``NO_COLOR`` set (https://no-color.org)."""
    if "NO_COLOR" in os.environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class PlainFormatter(logging.Formatter):
    """A formatter that removes the colour codes other libraries put inside their messages."""

    def __init__(self, fmt: str, keep_color: bool = False):
        super().__init__(fmt)
        self.keep_color = keep_color

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record, stripped of ANSI codes unless colour is wanted."""
        text = super().format(record)
        return text if self.keep_color else strip_ansi(text)


class LazyFileHandler(logging.FileHandler):
    """A file handler that creates its folder and file only when the first record arrives."""

    def __init__(self, path: Path):
        super().__init__(path, encoding="utf-8", delay=True)

    def _open(self):  # noqa: ANN202 - logging.FileHandler's hook
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


class VerbosityFilter(logging.Filter):
    """Lets a record through to stderr by level and by whose record it is (see the module docstring)."""

    def __init__(self, verbosity: int, debug: bool):
        super().__init__()
        if debug:
            self.own, self.other = logging.DEBUG, logging.DEBUG
        else:
            self.own = logging.INFO if verbosity >= 2 else logging.WARNING
            self.other = {0: logging.CRITICAL + 1, 1: logging.WARNING}.get(verbosity, logging.INFO)

    def filter(self, record: logging.LogRecord) -> bool:
        """True when ``record`` is shown at this verbosity (``file_only`` records never are)."""
        if getattr(record, "file_only", False):
            return False
        if record.name == PRINTED_MESSAGES:
            return self.other <= logging.WARNING
        own = record.name.split(".")[0] in OWN_LOGGERS
        return record.levelno >= (self.own if own else self.other)


class _Setup:
    """The handlers installed by :func:`configure` (one CLI invocation per process)."""

    log_file: Path | None = None
    handlers: list[logging.Handler] = []
    root_level: int = logging.INFO
    environment: dict[str, str | None] = {}  # variables set for the bars, with their values before


def log_path(home: Path) -> Path:
    """A fresh log file path under ``home``/logs for this invocation."""
    return home / "logs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def progress_environment(progress: bool) -> None:
    """Decide once whether bars are drawn (``--progress``, else stderr is a terminal) and tell every bar.

    :mod:`deepsynth.progress` reads ``DEEPSYNTH_PROGRESS`` (steps and training ranks inherit it);
    third-party bars (tqdm's, Hugging Face's) are switched off by their own variables. A value the
    user set is kept (``--progress`` wins); what an earlier invocation in this process set is undone first.
    """
    from deepsynth.progress import ENV, bars_enabled

    for key, before in _Setup.environment.items():
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before
    _Setup.environment = {}

    def put(key: str, value: str, force: bool = False) -> None:
        if force or key not in os.environ:
            _Setup.environment[key] = os.environ.get(key)
            os.environ[key] = value

    put(ENV, "1", force=True) if progress else put(ENV, "1" if bars_enabled() else "0")
    if not bars_enabled():  # \r-redrawn bars make unreadable CI logs
        put("TQDM_DISABLE", "1")
        put("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def quiet_environment(verbosity: int, debug: bool, stream: TextIO) -> None:
    """Environment defaults that keep third-party libraries quiet and colourless before they are imported."""
    set_defaults(logging_defaults(verbosity, debug, color=wants_color(stream)))


def configure(verbosity: int = 0, debug: bool = False, home: Path | None = None, progress: bool = False) -> Path | None:
    """Route logging and warnings: everything to a log file under ``home``, a filtered view to stderr.

    Args:
        verbosity: 0 = project warnings only on stderr; 1 = + third-party warnings; 2 = + info.
        debug: Everything, at debug level.
        home: DeepSynth home (default: :func:`deepsynth.paths.deepsynth_home`).
        progress: Draw progress bars even when stderr is not a terminal.

    Returns:
        The log file's path (created when the first record arrives).
    """
    from deepsynth.paths import deepsynth_home

    quiet_environment(verbosity, debug, sys.stderr)
    progress_environment(progress)
    root = logging.getLogger()
    for handler in _Setup.handlers:
        root.removeHandler(handler)
        handler.close()
    _Setup.log_file = log_path(home or deepsynth_home())
    to_file = LazyFileHandler(_Setup.log_file)
    to_file.setFormatter(PlainFormatter(_FILE_FORMAT))
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.addFilter(VerbosityFilter(verbosity, debug))
    to_stderr.setFormatter(
        PlainFormatter(
            "%(levelname)s %(name)s: %(message)s" if verbosity or debug else "%(message)s",
            keep_color=wants_color(sys.stderr),
        )
    )
    _Setup.handlers = [to_file, to_stderr]
    for handler in _Setup.handlers:
        root.addHandler(handler)
    _Setup.root_level = logging.DEBUG if debug else logging.INFO
    root.setLevel(_Setup.root_level)
    logging.captureWarnings(True)
    adopt_library_logging()
    return _Setup.log_file


def current_log_file() -> Path | None:
    """The log file of this invocation, if :func:`configure` ran and something was logged."""
    path = _Setup.log_file
    return path if path is not None and path.exists() else None


#: Libraries that print through handlers of their own when they were imported first.
OWN_HANDLER_LIBRARIES = ("mlflow",)


def adopt_library_logging() -> None:
    """Route already-imported libraries' records through this project's handlers only.

    ZenML puts a console handler on the root logger (it writes to stdout, in colour) when it is
    first imported; MLflow, imported before ``MLFLOW_CONFIGURE_LOGGING=false`` was set, has its
    own stderr handler. Both are dropped; the root level is reset to this invocation's. What MLflow
    prints for people (its ``eprint`` stream) becomes records of :data:`PRINTED_MESSAGES`, from now
    on or from when MLflow is imported (:func:`route_mlflow_prints`).
    """
    if not _Setup.handlers:
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ == "ZenMLConsoleHandler":
            root.removeHandler(handler)
    for name in OWN_HANDLER_LIBRARIES:
        library = logging.getLogger(name)
        if name in sys.modules and library.handlers:
            for handler in list(library.handlers):
                library.removeHandler(handler)
            library.propagate = True
    route_mlflow_prints()
    root.setLevel(_Setup.root_level)


class _LinesToLog:
    """A text stream whose complete lines become INFO records of one logger."""

    enabled = True  # MLflow's disable_logging() switches its stream off through this attribute

    def __init__(self, name: str):
        self.logger, self.pending = logging.getLogger(name), ""

    def write(self, text: str) -> int:
        """Log each complete line of ``text`` (the rest waits for its newline)."""
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            if line.strip() and self.enabled:
                self.logger.info(line)
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered but an unfinished line."""


def _log_mlflow_prints(logging_utils: Any = None) -> None:
    """Send MLflow's ``eprint`` messages (registration chatter) to the log instead of straight to stderr."""
    if logging_utils is None:
        from mlflow.utils import logging_utils
    if not isinstance(logging_utils.MLFLOW_LOGGING_STREAM, _LinesToLog):
        logging_utils.MLFLOW_LOGGING_STREAM = _LinesToLog(PRINTED_MESSAGES)


class _WhenImported(importlib.abc.MetaPathFinder):
    """Calls ``callback(module)`` right after module ``name`` is first imported, then leaves ``sys.meta_path``."""

    def __init__(self, name: str, callback: Callable[[ModuleType], None]):
        self.name, self.callback = name, callback

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        """The regular spec of ``name``, its loader made to call back after running the module; None otherwise."""
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def exec_then_call(module: ModuleType) -> None:
                exec_module(module)
                self.callback(module)

            spec.loader.exec_module = exec_then_call  # type: ignore[method-assign]
        return spec


def route_mlflow_prints() -> None:
    """Route MLflow's prints into the log now if MLflow is imported, else as soon as it is.

    Importing MLflow only for this costs 2-3 s per command, and many commands (``runs``, ``models``)
    never import it.
    """
    name = "mlflow.utils.logging_utils"
    if name in sys.modules:
        _log_mlflow_prints(sys.modules[name])
    elif not any(isinstance(f, _WhenImported) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _WhenImported(name, _log_mlflow_prints))


def log_to_file(message: str, exc: BaseException | None = None) -> None:
    """Write ``message`` (and ``exc``'s traceback) to the log file only, never to stderr."""
    logging.getLogger("deepsynth_cli").error(message, exc_info=exc, extra={"file_only": True})


def import_zenml() -> None:
    """Import ZenML with the project's environment defaults, then take over its console logging."""
    from pipelines.local_stack import prepare_environment
    from pipelines.zenml_speedups import collection_paused

    prepare_environment()
    with collection_paused():  # ZenML's modules live as long as the process: nothing for the collector to find
        import zenml  # noqa: F401  (its import installs its logging)

    adopt_library_logging()
