"""Adapter merging (peft add_weighted_adapter): the result is a normal verified package that summarize, serve and
registration accept; ``cat`` with weights (1, 0) reproduces the first adapter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from support.adapters import prompt_logits
from support.serving_client import TEXT

from deepsynth.errors import ConfigError
from deepsynth.inference import load_adapter_model
from deepsynth.merge import merge_adapters
from deepsynth.package import open_package

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def merged(packages, shared_home, tmp_path_factory):
    refs = [str(packages[0].output_dir), str(packages[1].package_path)]
    root = tmp_path_factory.mktemp("merged")
    return {
        method: merge_adapters(refs, weights, root / method, method=method, home=shared_home)
        for method, weights in (("cat", [1.0, 0.0]), ("linear", [0.6, 0.4]), ("ties", [0.5, 0.5]))
    }


def test_cat_with_weights_one_and_zero_gives_the_first_adapter(merged, packages, shared_home, test_docs, alone):
    result = merged["cat"]
    config = json.loads((result.output_dir / "trainer_config.json").read_text())
    assert config["lora_rank"] == 16 and config["merged_from"]["method"] == "cat"
    assert [s["sha256"] for s in config["merged_from"]["sources"]] == [p.adapter_sha256 for p in packages]
    first = load_adapter_model(packages[0].output_dir, home=shared_home)
    combined = load_adapter_model(result.output_dir, home=shared_home)
    expected, length = prompt_logits(first, test_docs[0])
    got, _ = prompt_logits(combined, test_docs[0])
    assert torch.allclose(got[0, length - 1], expected[0, length - 1], atol=1e-5)


@pytest.mark.parametrize("method", ["linear", "ties"])
def test_a_merged_package_is_verified_summarized_served_and_registered(merged, method, shared_home, mlflow_store):
    from deepsynth.inference import GenerationConfig, Summarizer
    from deepsynth.registry import register_package, show
    from deepsynth.serving.config import ServeConfig
    from deepsynth.serving.server import ModelServer

    result = merged[method]
    assert open_package(result.output_dir) == result.output_dir
    assert open_package(result.package_path, dest=result.output_dir.parent / f"{method}-unzipped")
    summarizer = Summarizer.load(result.package_path, home=shared_home, generation=GenerationConfig(max_new_tokens=6))
    summary = summarizer.summarize_text(TEXT)
    summarizer.close()
    server = ModelServer(ServeConfig(poll_interval_s=0), home=shared_home).start([str(result.output_dir)])
    try:
        served = server.summarize(text=TEXT, max_new_tokens=6)
    finally:
        server.stop()
    assert served["summary"] == summary and served["adapter"]["sha256"] == result.adapter_sha256
    registered = register_package(result.output_dir, f"deepsynth-merged-{method}", commit="tests")
    assert (
        registered["created"]
        and show(f"deepsynth-merged-{method}/{registered['version']}")["tags"]["adapter_sha256"]
        == result.adapter_sha256
    )


def test_bad_merges_are_refused_with_a_message(packages, shared_home, tmp_path):
    with pytest.raises(ConfigError, match="at least two adapters"):
        merge_adapters([str(packages[0].output_dir)], [1.0], tmp_path / "one", home=shared_home)
    with pytest.raises(ConfigError, match="is not one of"):
        merge_adapters([str(packages[0].output_dir)] * 2, [1.0, 1.0], tmp_path / "x", method="magic", home=shared_home)


def test_force_replaces_an_earlier_export_at_out_and_without_it_nothing_is_written(
    merged, packages, shared_home, tmp_path
):
    refs = [str(packages[0].output_dir), str(packages[1].output_dir)]
    out = tmp_path / "earlier"
    shutil.copytree(merged["linear"].output_dir, out)
    with pytest.raises(ConfigError, match="not empty; choose a new or empty folder, or --force"):
        merge_adapters(refs, [1.0, 0.0], out, method="cat", home=shared_home)
    assert json.loads((out / "trainer_config.json").read_text())["merged_from"]["method"] == "linear"
    result = merge_adapters(refs, [1.0, 0.0], out, method="cat", home=shared_home, force=True)
    assert open_package(result.output_dir) == out
    assert json.loads((out / "trainer_config.json").read_text())["merged_from"]["method"] == "cat"


def test_the_merge_command_prints_one_json_document(packages, shared_home, tmp_path):
    out = tmp_path / "cli-merged"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepsynth_cli",
            "adapters",
            "merge",
            str(packages[0].output_dir),
            str(packages[1].output_dir),
            "--weights",
            "0.7,0.3",
            "--method",
            "dare_linear",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DEEPSYNTH_HOME": str(shared_home)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["method"] == "dare_linear" and summary["weights"] == [0.7, 0.3]
    assert open_package(summary["output_dir"]) == out
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepsynth_cli",
            "adapters",
            "merge",
            str(packages[0].output_dir),
            "--out",
            str(tmp_path / "bad"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and json.loads(bad.stdout)["exit_code"] == 2 and "Traceback" not in bad.stderr
