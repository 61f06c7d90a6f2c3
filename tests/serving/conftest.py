"""Serving fixtures: two really trained tiny adapters exported as packages, an MLflow store, HTTP on 127.0.0.1."""

from __future__ import annotations

import pytest
from support.adapters import mlflow_store_at, tiny_trainer_config
from support.serving_client import start_http

# The decoding settings the packages record (as an evaluation would): what the server uses by default.
RECORDED = {"max_new_tokens": 6, "no_repeat_ngram_size": 0}


@pytest.fixture(scope="session")
def second_adapter(shared_home, rendered_dataset, tmp_path_factory):
    """A second real LoRA adapter: same data and base as ``trained_adapter``, another seed and learning rate."""
    from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer

    out = tmp_path_factory.getbasetemp() / "serving_second_adapter"
    if not (out / "adapter_model.safetensors").is_file():
        config = tiny_trainer_config(
            shared_home,
            out,
            mode="tiny",
            num_epochs=2,
            learning_rate=2e-2,
            lora_dropout=0.0,
            seed=7,
            instruction_prompt="Summarize this text:",
        )
        DeepSynthLoRATrainer(config).train(rendered_dataset)
    return out


@pytest.fixture(scope="session")
def packages(trained_adapter, second_adapter, rendered_dataset, tmp_path_factory):
    """The two adapters exported (directory and zip each): the packages users hand the server."""
    from deepsynth.export import export_adapter

    root = tmp_path_factory.mktemp("serving_packages")
    return [
        export_adapter(
            adapter,
            root / name,
            dataset=rendered_dataset.path,
            metrics={"rouge_l": 0.1 * (i + 1)},
            generation=RECORDED,
        )
        for i, (adapter, name) in enumerate([(trained_adapter, "first"), (second_adapter, "second")])
    ]


@pytest.fixture(scope="session")
def alone(packages, shared_home):
    """``alone(package_index, text=..., pages=..., max_new_tokens=...)``: the summary a lone Summarizer gives."""
    from deepsynth.inference import GenerationConfig, Summarizer

    cache: dict = {}

    def summary(index, text=None, pages=None, max_new_tokens=6):
        key = (index, text, tuple(pages or ()), max_new_tokens)
        if key not in cache:
            summarizer = Summarizer.load(
                packages[index].output_dir, home=shared_home, generation=GenerationConfig(max_new_tokens=max_new_tokens)
            )
            cache[key] = summarizer.summarize_text(text) if text is not None else summarizer.summarize_pages(pages)
            summarizer.close()
        return cache[key]

    return summary


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """A real sqlite MLflow tracking + registry store in a temp dir (restored afterwards)."""
    with mlflow_store_at(tmp_path_factory.mktemp("serving_mlflow"), "serving-tests") as uri:
        yield uri


@pytest.fixture(scope="module")
def url(server):
    """The module's ``server`` fixture over HTTP on 127.0.0.1: its base URL."""
    http = start_http(server)
    yield http.url
    http.stop()
