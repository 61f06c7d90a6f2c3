"""One answer per question: every way of running a package decodes with the settings and instruction it records.

``deepsynth summarize``, the package's ``inference.py``, the registered pyfunc model, the evaluation
step's generation and ``deepsynth serve`` (a request with no settings, over real HTTP) must give the same
summary of the same text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from deepsynth.export import export_adapter
from deepsynth.inference import GenerationConfig, Summarizer, generate_with_stats, load_adapter_model
from deepsynth.inference.loading import read_trainer_config
from deepsynth.registry.pyfunc_model import PACKAGE_ARTIFACT, DeepSynthSummarizerModel
from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer

ROOT = Path(__file__).parents[2]
TEXT = "The city council approved a new budget on Monday. It raises school funding. Critics expect higher taxes."
# Not the library's defaults (max_new_tokens 128, no_repeat_ngram_size 0): a path that ignored the
# recorded settings would decode differently.
EVALUATED_WITH = GenerationConfig(max_new_tokens=9, no_repeat_ngram_size=2, batch_size=2)


def test_the_trainer_records_the_instruction_its_documents_carried(make_rendered, tiny_config, tmp_path):
    data = make_rendered(tmp_path / "data", n_docs=2, instruction="Summarize this paper:")
    config = tiny_config(num_epochs=1, instruction_prompt="Summarize this text:")
    DeepSynthLoRATrainer(config).train(data)
    assert read_trainer_config(config.output_dir)["instruction_prompt"] == "Summarize this paper:"


@pytest.fixture(scope="module")
def package(trained_adapter, rendered_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("one-answer") / "export"
    return export_adapter(
        trained_adapter, out, create_package=False, dataset=rendered_dataset.path, generation=EVALUATED_WITH.to_dict()
    ).output_dir


def test_the_package_records_generation_settings_and_instruction(package, trained_adapter):
    manifest = json.loads((package / "manifest.json").read_text())
    assert manifest["generation"] == EVALUATED_WITH.to_dict()
    assert manifest["instruction"] == read_trainer_config(trained_adapter)["instruction_prompt"]


@pytest.mark.slow
def test_summarize_inference_py_pyfunc_evaluation_and_the_server_give_the_same_summary(package, shared_home, tmp_path):
    text_file = tmp_path / "doc.txt"
    text_file.write_text(TEXT)
    env = {**os.environ, "DEEPSYNTH_HOME": str(shared_home), "HF_HUB_OFFLINE": "1"}
    # The script and the CLI run while this process loads and decodes: their start-up (importing torch,
    # transformers and peft) is most of this test's time.
    inference_py = [package / "inference.py", "--text-file", text_file, "--cache-dir", shared_home]
    script = _start(tmp_path / "script", inference_py, env)
    cli = _start(tmp_path / "cli", ["-m", "deepsynth_cli", "summarize", "--model", package, text_file, "--json"], env)
    try:
        library = Summarizer.load(package, home=shared_home)
        assert library.generation == EVALUATED_WITH
        expected = library.summarize_text(TEXT)
        assert expected

        loaded = load_adapter_model(package, home=shared_home)  # what the evaluation step generates with
        evaluation = generate_with_stats(loaded, [library.render_text(TEXT)], EVALUATED_WITH)[0].text

        pyfunc = DeepSynthSummarizerModel()
        pyfunc.load_context(SimpleNamespace(artifacts={PACKAGE_ARTIFACT: str(package)}))
        registered = pyfunc.predict(None, [TEXT])[0]

        served = _served(package, shared_home)
        script_out, cli_out = _output(script, tmp_path / "script"), _output(cli, tmp_path / "cli")
    finally:
        for proc in (script, cli):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert evaluation == registered == script_out.strip() == json.loads(cli_out)[str(text_file)] == expected
    assert served == [expected, expected]


def _start(log: Path, args: list, env: dict) -> subprocess.Popen:
    """``python *args`` from the project root, its stdout and stderr to ``log``.out and ``log``.err."""
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        return subprocess.Popen([sys.executable, *map(str, args)], stdout=out, stderr=err, env=env, cwd=ROOT)


def _output(proc: subprocess.Popen, log: Path) -> str:
    """The stdout of ``proc`` once it has exited 0 (within 300 s), or an assertion error with its stderr's end."""
    assert proc.wait(timeout=300) == 0, log.with_suffix(".err").read_text()[-2000:]
    return log.with_suffix(".out").read_text()


def _served(package, home) -> list[str]:
    """What ``deepsynth serve`` answers for TEXT with no settings in the request: /v1/summarize and /v1/completions."""
    from support.serving_client import call, start_http

    from deepsynth.serving.config import ServeConfig
    from deepsynth.serving.server import ModelServer

    server = ModelServer(ServeConfig(poll_interval_s=0), home=home).start([f"one={package}"])
    http = start_http(server)
    try:
        status, _, summary = call(f"{http.url}/v1/summarize", "POST", {"text": TEXT})
        assert status == 200, summary
        status, _, completion = call(f"{http.url}/v1/completions", "POST", {"model": "one", "prompt": TEXT})
        assert status == 200, completion
        return [summary["summary"], completion["choices"][0]["text"]]
    finally:
        http.stop()
        server.stop()
