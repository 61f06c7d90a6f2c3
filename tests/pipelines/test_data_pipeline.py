"""The data pipeline end to end through the CLI, on a real ZenML store with MLflow on SQLite."""

from __future__ import annotations

import json

import pytest

from deepsynth_cli import main

pytestmark = pytest.mark.slow
PICKLE_MATERIALIZERS = ("CloudpickleMaterializer", "PickleMaterializer")


def run_cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr().out
    return code, json.loads(out[out.index("{") :]) if "--json" in args and "{" in out else out


@pytest.fixture(scope="module")
def messy_file(tmp_path_factory, make_docs):
    """8 good documents plus an empty text, a duplicate id and a line of invalid UTF-8."""
    path = tmp_path_factory.mktemp("data") / "messy.jsonl"
    good = [json.dumps(d).encode() for d in make_docs(8, words=150)]
    bad = [
        json.dumps({"id": "blank", "text": "   ", "summary": "x"}).encode(),
        json.dumps(
            {"id": "doc-3", "text": "Another text entirely, long enough to count as a document.", "summary": "dup"}
        ).encode(),
        b'{"id": "latin1", "text": "caf\xe9", "summary": "s"}',
    ]
    path.write_bytes(b"\n".join(good + bad) + b"\n")
    return path


def test_data_command_counts_quarantine_and_tracks(zenml_client, messy_file, capsys):
    code, summary = run_cli(capsys, "data", str(messy_file), "--mode", "tiny", "--json")
    assert code == 0, summary
    assert (summary["ingested"], summary["valid"], summary["quarantined"]) == (11, 8, 3)
    assert summary["ingested"] == summary["valid"] + summary["quarantined"]
    reasons = {q["id"]: q["reason"] for q in summary["quarantine"]}
    assert "empty or whitespace-only text" in reasons["blank"]
    assert "duplicate id 'doc-3'" in reasons["doc-3"]
    assert any(f"{messy_file.name}, row 11: invalid UTF-8" in r for r in reasons.values())
    assert summary["validation_passed"] is True and summary["pages"] >= 8 and summary["truncated"] == 0

    run = zenml_client.get_pipeline_run(summary["run_id"])
    materializers = {
        name: artifact.materializer.attribute
        for step in run.steps.values()
        for name, artifacts in step.outputs.items()
        for artifact in artifacts
    }
    assert materializers["documents"] == "DocumentDatasetMaterializer"
    assert materializers["rendered"] == materializers["valid"] == "RenderedDatasetMaterializer"
    assert materializers["validation_report"] == "ValidationReportMaterializer"
    assert not set(materializers.values()) & set(PICKLE_MATERIALIZERS)

    import mlflow

    tracker = zenml_client.active_stack.experiment_tracker
    mlflow.set_tracking_uri(tracker.get_tracking_uri())
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    (validated,) = [r for r in runs if r.data.metrics.get("data_ingested") == 11]
    assert validated.data.metrics["data_quarantined"] == 3
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(validated.info.run_id, "validation")}
    assert artifacts == {"validation/report.html", "validation/report.json"}
    assert tracker.get_tracking_uri().startswith("sqlite:")


def test_unchanged_data_is_cached_and_changed_data_is_not(zenml_client, messy_file, capsys, tmp_path):
    code, summary = run_cli(capsys, "data", str(messy_file), "--mode", "tiny", "--json")
    assert code == 0 and {summary["steps"][s] for s in ("ingest", "render_pages", "validate_dataset")} == {"cached"}
    changed = tmp_path / "messy.jsonl"
    changed.write_bytes(messy_file.read_bytes().replace(b"Summary 1:", b"Summary one:"))
    code, summary = run_cli(capsys, "data", str(changed), "--mode", "tiny", "--json")
    assert code == 0 and summary["steps"]["ingest"] == summary["steps"]["render_pages"] == "completed"


def test_run_command_exits_3_when_validation_fails(zenml_client, tmp_path, capsys):
    data = tmp_path / "cjk.jsonl"
    splits = ["train", "train", "validation", "test"]  # every split the training run reads holds documents
    # Japanese is drawn by the CJK fallback font; the Egyptian hieroglyph U+13000 is in no font of the chain.
    data.write_text(
        "".join(
            json.dumps(
                {"id": f"c{i}", "text": "漢字の文書 \U00013000 " * 40 + str(i), "summary": "要約", "split": splits[i]},
                ensure_ascii=False,
            )
            + "\n"
            for i in range(4)
        )
    )
    config = tmp_path / "cjk.yaml"
    config.write_text(
        f"# Launch: deepsynth run --config {config}\ningest:\n  source: file\n  path: {data}\nrender:\n  modes: "
        "[tiny]\n"
    )
    code = main(["run", "--config", str(config), "--set", "render.workers=1"])
    captured = capsys.readouterr()
    assert code == 3
    assert "missing_glyph_fraction: observed 1.0000, required <= 0.02" in captured.err
    assert "validation_passed: False" in captured.out

    # The gate is cached, but only when it passed: the same run finds validation cached and fails again.
    assert main(["run", "--config", str(config), "--set", "render.workers=1", "--json"]) == 3
    again = json.loads(capsys.readouterr().out)
    assert again["steps"]["validate_dataset"] == "cached" and again["steps"]["check_data_quality"] == "failed"
