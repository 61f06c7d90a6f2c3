"""The steps' cache keys cover the library code that computes their outputs, as ZenML computes them.

Training and evaluation add a digest of that code's files (a cache function), so that a run which
finds them cached never imports the model libraries; rendering and validation list their modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from zenml.utils import source_code_utils, source_utils

from steps.common import source_digest
from steps.evaluate_adapter import EVALUATE_CACHE, EVALUATION_CODE
from steps.render_pages import RENDER_CACHE
from steps.train_lora import TRAIN_CACHE, TRAINING_CODE
from steps.validate_dataset import GATE_CACHE, VALIDATE_CACHE

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("policy", "code", "must_cover"),
    [
        (TRAIN_CACHE, TRAINING_CODE, {"deepsynth.training", "deepsynth.models", "deepsynth.adapters"}),
        (EVALUATE_CACHE, EVALUATION_CODE, {"deepsynth.evaluation", "deepsynth.inference", "deepsynth.models"}),
    ],
    ids=["train", "evaluate"],
)
def test_training_and_evaluation_keys_digest_their_library_code(policy, code, must_cover):
    assert must_cover <= set(code)
    digest = source_utils.load(policy.cache_func.import_path)()  # as ZenML loads and calls it
    assert digest == source_digest(*code) and len(digest) == 64


@pytest.mark.parametrize(
    ("policy", "must_cover"),
    [
        (RENDER_CACHE, {"deepsynth.rendering.renderer", "deepsynth.data.generator"}),
        (VALIDATE_CACHE, {"deepsynth.validation.rules", "deepsynth.validation.suite"}),
        (GATE_CACHE, {"deepsynth.validation.report"}),  # raise_for_failure
    ],
    ids=["render", "validate", "gate"],
)
def test_render_validate_and_gate_keys_hash_their_modules(policy, must_cover):
    paths = set()
    for source in policy.source_dependencies:
        assert source_code_utils.get_source_code(source_utils.load(source.import_path)).strip(), source.import_path
        paths.add(source.import_path)
    assert must_cover <= paths


def test_source_digest_follows_every_file_of_a_package_and_imports_nothing(tmp_path, monkeypatch):
    package = tmp_path / "digestpkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "core.py").write_text("VALUE = 1\n")
    (package / "sub" / "deep.py").write_text("raise RuntimeError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = source_digest("digestpkg")
    assert "digestpkg.sub.deep" not in sys.modules and "digestpkg.core" not in sys.modules
    assert source_digest("digestpkg") == first

    (package / "sub" / "deep.py").write_text("raise RuntimeError('imported, changed')\n")
    changed = source_digest("digestpkg")
    (package / "extra.py").write_text("")
    added = source_digest("digestpkg")
    assert len({first, changed, added}) == 3
    assert source_digest("digestpkg.core") != source_digest("digestpkg")  # a module alone: its own file

    with pytest.raises(ModuleNotFoundError, match="digestpkg.missing"):
        source_digest("digestpkg.missing")


def test_the_training_steps_import_no_model_library_and_set_up_no_store(tmp_path):
    """A run that finds training and evaluation cached never pays for torch, transformers or peft, and importing
    the steps (``deepsynth register`` does, before it picks the project's store) sets up no ZenML store."""
    config = tmp_path / "zenml"
    code = (
        "import json, os, sys\n"
        "import pipelines.registration_pipeline, steps.train_lora, steps.evaluate_adapter\n"
        "import steps.render_pages, steps.validate_dataset\n"
        f"store = os.path.exists({str(config)!r})\n"
        "import pipelines.training_pipeline\n"
        "steps.train_lora.training_code(), steps.evaluate_adapter.evaluation_code()\n"
        "libraries = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
        "print(json.dumps({'store': store, 'libraries': libraries}))\n"
    )
    env = {**os.environ, "ZENML_CONFIG_PATH": str(config)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == {"store": False, "libraries": []}
