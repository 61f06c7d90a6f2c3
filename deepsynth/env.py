"""The process environment in one place: the launcher's rank, and the defaults set for libraries.

Every default is set with ``setdefault``: a value the user exported always wins. Defaults are set
before the library that reads them is imported (ZenML, MLflow, Great Expectations, transformers).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: The Hugging Face hub switch: models come from disk unless a run needs the hub (:func:`hub_offline`).
HUB_OFFLINE = "HF_HUB_OFFLINE"

#: Third-party libraries: no analytics or telemetry, no prompts, no rich tracebacks, quiet logs, and
#: models from disk (a run that needs the hub sets :data:`HUB_OFFLINE` first: :func:`hub_offline`).
QUIET_DEFAULTS = {
    "ZENML_ANALYTICS_OPT_IN": "false",
    "ZENML_DISABLE_INTERACTIVE_INPUT": "true",
    "ZENML_LOGGING_VERBOSITY": "WARN",
    "ZENML_ENABLE_RICH_TRACEBACK": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "TOKENIZERS_PARALLELISM": "false",
    HUB_OFFLINE: "1",
}


def set_defaults(values: Mapping[str, str]) -> None:
    """Set each variable that is not set yet (an exported value wins)."""
    for key, value in values.items():
        os.environ.setdefault(key, value)


def logging_defaults(verbosity: int, debug: bool, color: bool) -> dict[str, str]:
    """What keeps ZenML, MLflow and transformers quiet (and colourless when ``color`` is false) on a console."""
    values = {"MLFLOW_CONFIGURE_LOGGING": "false"}  # MLflow logs through the root logger (ours)
    if not color:
        values["ZENML_LOGGING_COLORS_DISABLED"] = "true"
    if debug:
        values["ZENML_LOGGING_VERBOSITY"] = "DEBUG"
    else:
        values["TRANSFORMERS_VERBOSITY"] = "warning" if verbosity else "error"
    return values


def is_hub_name(model_name: str) -> bool:
    """``owner/name`` that is not a path on this machine: the weights come from the Hugging Face hub."""
    return "/" in model_name and not Path(model_name).expanduser().exists()


def hub_offline(model_name: str | None = None, local_stack: bool = True) -> str:
    """``HF_HUB_OFFLINE``'s default: "1" (models from disk, no network waits), except "0" when the
    run's model is a hub name and its steps run on another stack (their machines download it)."""
    return "0" if model_name and not local_stack and is_hub_name(model_name) else "1"


def rank() -> int:
    """This process's global rank, as ``torchrun``/``accelerate launch`` set it (0 when not launched so)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """How many processes the launcher started (1 when not launched by one)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK``, else the global rank)."""
    return int(os.environ.get("LOCAL_RANK", rank()))


def local_world_size() -> int:
    """How many processes of this run the launcher started on this machine (``LOCAL_WORLD_SIZE``, else 1)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (another user's process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
