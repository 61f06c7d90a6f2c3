"""A two-variant sweep through the whole training pipeline: one train step, evaluation, export and registration."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support.serving_client import TEXT, Served, call

from deepsynth_cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
CONFIG = str(ROOT / "configs" / "quickstart.yaml")
SMALL = [
    "ingest.max_documents=5",  # not the data of test_training_pipeline.py: its first run must execute every step
    "validate.min_valid_rows=3",
    "render.max_pages=1",
    "train.num_epochs=2",
    "evaluate.max_documents=2",
    "evaluate.generation.max_new_tokens=8",
    "register.model_name=sweep-summarizer",
    "train.sweep={lora_rank: [4, 8]}",
]


def cli_json(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip().startswith(("{", "[")) else out)


def test_a_sweep_trains_evaluates_registers_all_and_makes_the_best_the_challenger(zenml_client, capsys):
    args = ["run", "--config", CONFIG, "--json"] + sum((["--set", item] for item in SMALL), [])
    code, summary = cli_json(capsys, *args)
    assert code == 0, summary
    steps = ("train_lora", "evaluate_adapter", "export_and_register", "check_promotion")
    assert {summary["steps"][s] for s in steps} == {"completed"}

    # The run summary: every variant's metrics beside the base and lead-3 (scored once).
    names = ["lora_rank_4", "lora_rank_8"]
    assert list(summary["evaluation"]) == [f"adapter/{n}" for n in names] + ["base", "lead_3"]
    assert summary["evaluation_verdict"].startswith("Best of 2 adapters on rouge_l")
    page = Path(summary["reports"]["evaluation"]["file"]).read_text()
    assert all(f"<th>adapter/{n}</th>" in page for n in names)  # side by side in one metric table

    # Both registered under the one model name, tagged with their variant and the sweep id.
    registration = summary["registration"]
    variants = registration["variants"]
    assert sorted(variants) == names
    assert sorted(v["version"] for v in variants.values()) == ["1", "2"]
    assert {v["name"] for v in variants.values()} == {"sweep-summarizer"}
    scores = {n: summary["evaluation"][f"adapter/{n}"]["rouge_l"] for n in names}
    best = registration["best"]
    assert scores[best] == max(scores.values()) and registration["version"] == variants[best]["version"]
    for name in names:
        code, shown = cli_json(capsys, "models", "show", f"sweep-summarizer/{variants[name]['version']}")
        assert code == 0 and shown["tags"]["variant"] == name
        assert shown["tags"]["sweep_id"] == registration["sweep_id"]
    code, challenger = cli_json(capsys, "models", "show", "sweep-summarizer@challenger")
    assert challenger["version"] == variants[best]["version"]
    # The gate ran for the best variant only; with no champion yet it promotes it.
    assert registration["promotion"]["promoted"] is True
    code, champion = cli_json(capsys, "models", "show", "sweep-summarizer@champion")
    assert champion["version"] == variants[best]["version"]

    # What `deepsynth serve --run RUN` serves: every adapter of the run, by its registry ref.
    from pipelines.training_pipeline import adapters_of_run

    served = dict(adapters_of_run(summary["run_id"]))
    assert served == {n: f"models:/sweep-summarizer/{variants[n]['version']}" for n in names}
    server = Served(
        [sys.executable, "-m", "deepsynth_cli", "serve", "--run", summary["run_id"], "--port", "0", "--json"]
    )
    try:
        url = server.document()["url"]
        status, _, listed = call(f"{url}/v1/models")
        assert status == 200 and {m["id"] for m in listed["data"]} >= set(names), listed
        for name in names:  # each variant answers under its own name, on the one base
            status, _, body = call(f"{url}/v1/summarize", "POST", {"text": TEXT, "adapter": name, "max_new_tokens": 4})
            assert status == 200 and body["adapter"]["version"] == variants[name]["version"], body
    finally:
        code, stderr = server.stop()
    assert code == 0, stderr[-2000:]
