"""Test-wide environment: an isolated ZenML store and project home, quiet telemetry, 1 torch thread.

Environment variables are set here once, at import time, before anything imports ZenML or
MLflow. The shared tiny-profile adapter fixtures come from the ``support.adapters`` plugin.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

_TMP = tempfile.mkdtemp(prefix="deepsynth-tests-")
# Everything this process and the processes it starts put in the temp dir (torchrun's folders, extracted
# packages, step outputs of entrypoints called directly) goes under _TMP, which is removed at exit: a
# whole run used to leave ~1 GB behind in /tmp. pytest's tmp_path folders stay where pytest keeps (and
# prunes) them.
os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
os.makedirs(os.path.join(_TMP, "tmp"))
# Reachable by other users as /tmp is (mkdtemp makes 0700): the containers' PostgreSQL runs as `postgres`.
os.chmod(_TMP, 0o755)
os.chmod(os.path.join(_TMP, "tmp"), 0o1777)
os.environ["TMPDIR"] = tempfile.tempdir = os.path.join(_TMP, "tmp")
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
os.environ["DEEPSYNTH_HOME"] = os.path.join(_TMP, "home")
os.environ["ZENML_CONFIG_PATH"] = os.path.join(_TMP, "zenml")

from pipelines.local_stack import QUIET_DEFAULTS  # noqa: E402  (imports no ZenML)

os.environ.update(QUIET_DEFAULTS)
os.environ["HF_DATASETS_OFFLINE"] = "1"
# A machine-wide PYTHONDONTWRITEBYTECODE (this one sets it) would make every process the suite starts
# in a fresh virtualenv (installed with --no-compile) compile torch, transformers and peft from source
# again: ~12 s of CPU each. The suite's processes write their bytecode caches, as a user's would.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
os.environ.setdefault("OMP_NUM_THREADS", "1")  # deepsynth.threads honours it: steps and launched ranks use 1 thread
if not getattr(sys.modules.get("__main__"), "__file__", None):
    # pytest-xdist workers run under execnet's in-memory __main__; ZenML derives its source root from __main__'s file.
    os.environ["ZENML_CUSTOM_SOURCE_ROOT"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pytest_plugins = ["support.adapters"]

try:
    import torch

    torch.set_num_threads(1)  # 2 threads on 2 shared cores can be 10x slower
except ImportError:  # pragma: no cover
    pass


def _mlflow_environment_kept():
    """Snapshot of MLFLOW_* variables and mlflow's process-wide URIs and experiment, put back at the end."""
    from support.adapters import mlflow_state, restore_mlflow_state

    before = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    state = mlflow_state()
    yield
    restore_mlflow_state(state)
    for key in [k for k in os.environ if k.startswith("MLFLOW_") and k not in before]:
        del os.environ[key]
    os.environ.update(before)


@pytest.fixture(autouse=True)
def _restore_mlflow_environment():
    """Keep tests apart: ZenML's MLflow tracker and the CLI's in-process commands leave MLFLOW_* variables
    and mlflow's process-wide tracking/registry URIs and experiment behind (a registry URI left pinned
    sends a later test's registration to another store)."""
    yield from _mlflow_environment_kept()


@pytest.fixture(autouse=True, scope="module")
def _restore_mlflow_environment_per_module():
    """The same around a whole module: its module fixtures run before the per-test snapshot, so one that
    runs a step or a CLI command in this process could leave MLFLOW_REGISTRY_URI set for every later module
    on the worker (seen once: a later module's subprocesses registered their models in another store)."""
    yield from _mlflow_environment_kept()


@pytest.fixture
def write_jsonl(tmp_path):
    """Callable: (records, name) -> path of a JSONL file in tmp_path."""

    def write(records, name="docs.jsonl"):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        return path

    return write


def english(n_words: int, seed: int = 0) -> str:
    """Deterministic English-looking text of ``n_words`` words."""
    words = "the model reads pages of text and writes a short summary for each document in the set".split()
    return " ".join(words[(i * 7 + seed) % len(words)] for i in range(n_words)).capitalize() + "."


@pytest.fixture(scope="session")
def make_docs():
    """Callable: n -> list of valid documents (id, text, summary) with distinct texts."""

    def make(n, words=120):
        return [
            {
                "id": f"doc-{i}",
                "text": f"Document {i}. " + english(words, seed=i),
                "summary": f"Summary {i}: " + english(8, seed=i),
            }
            for i in range(n)
        ]

    return make


@pytest.fixture(scope="session")
def deepsynth_home(tmp_path_factory):
    """A DeepSynth cache root shared by the session (the tiny model is built into it once)."""
    from deepsynth.models.loading import build_tiny_model, tiny_model_dir

    home = tmp_path_factory.getbasetemp() / "deepsynth_home"
    build_tiny_model(tiny_model_dir(home))
    return home


@pytest.fixture(scope="session")
def zenml_client():
    """A real ZenML client on the session's temp store, with the project's stack active."""
    from pipelines.local_stack import ensure_stack

    ensure_stack()
    from zenml.client import Client

    client = Client()
    assert Path(client.active_stack.artifact_store.path).is_relative_to(_TMP)
    return client


#: The longest modules, longest first (per-module seconds of a full run, from --junitxml: test_docs 340,
#: the CI job 210, then 120 down to 50), started before the other slow ones.
LONGEST = [
    "test_docs.py",
    "ops/test_ci_retrain_job.py",
    "benchmarks/test_benchmark_scripts.py",
    "registry/test_model_registry.py",
    "studio/test_browser.py",
    "pipelines/test_pipeline_faults.py",
    "export/test_fresh_environment.py",
    "training/test_multi_adapter_resume.py",
    "pipelines/test_train_step.py",
    "training/test_full_width_quantization.py",
    "test_dashboards.py",
    "ops/test_cron_firing.py",
    "pipelines/test_runs_browse.py",
    "training/test_launch.py",
    "pipelines/test_training_pipeline.py",
    "serving/test_benchmark_serve.py",
    "serving/test_hostile_server.py",
]


def pytest_collection_modifyitems(config, items):
    """The longest modules first, then other modules with slow tests (order otherwise kept), so parallel workers
    finish on short ones together."""
    here = Path(__file__).parent
    longest = {here / name: rank for rank, name in enumerate(LONGEST)}
    if stale := [name for name, path in zip(LONGEST, longest) if not path.is_file()]:
        raise pytest.UsageError(f"tests/conftest.py LONGEST names modules that do not exist: {stale}")
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (longest.get(item.path, len(longest)), item.path not in slow_files))
