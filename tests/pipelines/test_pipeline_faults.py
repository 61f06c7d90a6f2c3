"""Pipeline-level faults and the secret canary, on real ZenML/MLflow stores and real processes.

Each ``deepsynth`` invocation is its own process (tests/pipelines/fault_injection_cli.py installs the
one injected fault). The runs, in order:

1. render_pages writes its shards and then crashes          → the run fails at render_pages
2. same config, MLflow answers 503 to the training step's    → render_pages re-runs (not cached),
   logging and at registration; canary secrets in the          training completes (adapter kept),
   environment and a ZenML secret                              registration fails after retries
3. ``deepsynth register --adapter-artifact RUN``              → the adapter from run 2 is registered
4. a huge learning rate (inf/NaN loss)                       → run stops at train_lora; nothing exported
5. SIGTERM during the second training step                   → exit 143, a checkpoint outside the step's
                                                                outputs (which ZenML deletes)
6. the same command again                                    → training resumes from that checkpoint

Before them, a run whose instruction prompt and run name hold ``${HF_TOKEN}`` (with the canary set)
is refused at configuration time: ZenML would expand it into the data and the run's name.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
CONFIG = str(ROOT / "configs" / "quickstart.yaml")
WRAPPER = str(Path(__file__).with_name("fault_injection_cli.py"))
MODEL = "faults-summarizer"
SMALL = [
    "ingest.max_documents=5",
    "validate.min_valid_rows=3",
    "render.max_pages=1",
    "train.num_epochs=2",
    "evaluate.max_documents=2",
    "evaluate.generation.max_new_tokens=8",
    f"register.model_name={MODEL}",
]
CANARY_ENV = "hf_CANARYenvTOKEN7f3a9c1d2e"
CANARY_PASSWORD = "mlflowCANARYpassw0rd5b8e"
CANARY_SECRET = "zenmlCANARYsecret91c4aa0f"
SECRET_ENV = {
    "HF_TOKEN": CANARY_ENV,
    "HUGGING_FACE_HUB_TOKEN": CANARY_ENV,
    "MLFLOW_TRACKING_USERNAME": "deepsynth",
    "MLFLOW_TRACKING_PASSWORD": CANARY_PASSWORD,
}


def deepsynth(fault, record, *args, env=None, overrides=()):
    command = [sys.executable, WRAPPER, fault, str(record), *args]
    for item in list(overrides):
        command += ["--set", item]
    proc = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, timeout=400, env={**os.environ, **(env or {})}
    )
    out = proc.stdout
    summary = json.loads(out[out.index("{") :]) if "{" in out else None
    return proc, summary


def run_args(*extra):
    return ["run", "--config", CONFIG, "--json"], list(SMALL) + list(extra)


def registry_versions(name):
    import mlflow

    from pipelines.local_stack import use_stack_tracking

    use_stack_tracking()
    return sorted(int(mv.version) for mv in mlflow.MlflowClient().search_model_versions(f"name = '{name}'"))


@pytest.fixture(scope="module")
def runs(zenml_client, tmp_path_factory):
    """The four runs above, in order; each entry: (process, summary, records)."""
    tmp = tmp_path_factory.mktemp("faults")
    zenml_client.create_secret("deepsynth-canary", values={"hub_token": CANARY_SECRET})
    out = {}
    args, overrides = run_args("ingest.instruction_prompt=Summarize ${HF_TOKEN} briefly", "run_name=faults-${HF_TOKEN}")
    out["env_reference"] = (*deepsynth("none", tmp / "env.jsonl", *args, overrides=overrides, env=SECRET_ENV), None)
    args, overrides = run_args()
    out["render_crash"] = (
        *deepsynth("render_crash", tmp / "render.jsonl", *args, overrides=overrides),
        tmp / "render.jsonl",
    )
    out["outage"] = (
        *deepsynth("mlflow_outage", tmp / "outage.jsonl", *args, overrides=overrides, env=SECRET_ENV),
        tmp / "outage.jsonl",
    )
    out["versions_after_outage"] = registry_versions(MODEL)
    run_id = out["outage"][1]["run_id"]
    out["register"] = (
        *deepsynth(
            "none",
            tmp / "none.jsonl",
            "register",
            "--adapter-artifact",
            run_id,
            "--config",
            CONFIG,
            "--json",
            overrides=SMALL,
            env=SECRET_ENV,
        ),
        None,
    )
    args, overrides = run_args("train.learning_rate=1.0e+35", "train.max_grad_norm=0", "register.model_name=faults-nan")
    out["nan"] = (*deepsynth("none", tmp / "nan.jsonl", *args, overrides=overrides), None)
    args, overrides = run_args("train.num_epochs=4", "register.model_name=faults-sigterm")
    out["sigterm"] = (*deepsynth("sigterm", tmp / "sigterm.jsonl", *args, overrides=overrides), tmp / "sigterm.jsonl")
    out["training_state_after_sigterm"] = sorted(
        Path(os.environ["DEEPSYNTH_HOME"]).glob("training-state/*/checkpoints/*")
    )
    out["retry"] = (*deepsynth("none", tmp / "retry.jsonl", *args, overrides=overrides), None)
    return out


def test_a_step_failing_midway_leaves_no_artifact_that_a_later_run_uses(runs, zenml_client):
    proc, summary, records = runs["render_crash"]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "injected fault: lost the disk" in proc.stderr
    assert summary["steps"]["render_pages"] == "failed"
    assert "train_lora" not in summary["steps"] and "validate_dataset" not in summary["steps"]
    partial_dir = json.loads(Path(records).read_text().splitlines()[0])["output_dir"]
    # render_dataset had written a complete-looking dataset there; ZenML deleted the failed step's output
    # folder and registered no artifact for it
    assert not (Path(partial_dir) / "manifest.json").exists()
    failed_step = zenml_client.get_pipeline_run(summary["run_id"]).steps["render_pages"]
    assert failed_step.outputs == {}
    uris = {v.uri for v in zenml_client.list_artifact_versions(name="rendered", size=1000).items}
    assert partial_dir not in uris  # no artifact anywhere points at the failed step's folder

    _, rerun, _ = runs["outage"]
    assert rerun["steps"]["ingest"] == "cached"  # ingest had completed: reused
    assert rerun["steps"]["render_pages"] == "completed"  # the failed step is run again, never a cache hit
    rendered = zenml_client.get_pipeline_run(rerun["run_id"]).steps["render_pages"].outputs["rendered"][0]
    assert rendered.uri != partial_dir
    assert (
        zenml_client.get_pipeline_run(rerun["run_id"]).steps["validate_dataset"].inputs["rendered"][0].id == rendered.id
    )


def test_mlflow_outage_at_registration_loses_nothing_and_registration_reruns_alone(runs, zenml_client):
    proc, summary, records = runs["outage"]
    assert proc.returncode == 1, proc.stderr[-3000:]
    hits = [json.loads(line) for line in Path(records).read_text().splitlines()]
    calls = [hit["call"] for hit in hits if "call" in hit]
    # a 503 is transient: retried with backoff (4 attempts each)
    assert calls.count("log_training_to_mlflow") == 4 and calls.count("register_package") == 4
    # the backoff doubles (with jitter) between attempts; the wrapper records it instead of sleeping it
    backoffs = [hit["backoff_s"] for hit in hits if "backoff_s" in hit]
    assert len(backoffs) == 6 and all(2**i / 2 <= s <= 2**i for i, s in zip([0, 1, 2, 0, 1, 2], backoffs)), backoffs
    # training outlived the outage: the adapter is kept (metrics not logged to MLflow, with a warning)
    step_logs = Path(zenml_client.active_stack.artifact_store.path) / "logs"  # ZenML keeps each step's log there
    logged = proc.stdout + proc.stderr + "".join(p.read_text(errors="replace") for p in step_logs.rglob("*.log"))
    assert "MLflow unavailable" in logged and "the adapter is kept" in logged
    assert summary["steps"]["train_lora"] == "completed" and summary["steps"]["evaluate_adapter"] == "completed"
    assert summary["steps"]["export_and_register"] == "failed"
    assert runs["versions_after_outage"] == []  # nothing half-registered
    adapter = zenml_client.get_pipeline_run(summary["run_id"]).steps["train_lora"].outputs["adapter"][0]
    assert (Path(adapter.uri) / "adapter_model.safetensors").is_file()  # the trained adapter is kept

    proc, registered, _ = runs["register"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert registered["adapter_artifact"] == str(adapter.id)
    # the evaluation is reused, nothing is retrained
    assert registered["steps"] == {"export_and_register": "completed", "check_promotion": "completed"}
    registration = registered["registration"]
    assert registration["name"] == MODEL and registration["created"] is True
    assert registry_versions(MODEL) == [int(registration["version"])]
    import hashlib

    sha = hashlib.sha256((Path(adapter.uri) / "adapter_model.safetensors").read_bytes()).hexdigest()
    assert registration["adapter_sha256"] == sha  # the registered version is exactly the adapter trained in run 2


def test_non_finite_loss_stops_the_run_and_nothing_is_exported_or_registered(runs, zenml_client):
    proc, summary, _ = runs["nan"]
    assert proc.returncode == 1
    assert "loss became" in proc.stderr and "no adapter was written" in proc.stderr
    assert summary["steps"]["train_lora"] == "failed"
    assert "evaluate_adapter" not in summary["steps"] and "export_and_register" not in summary["steps"]
    assert "registration" not in summary and "adapter" not in summary
    assert zenml_client.get_pipeline_run(summary["run_id"]).steps["train_lora"].outputs == {}
    assert registry_versions("faults-nan") == []
    assert not zenml_client.list_artifact_versions(name="export", size=1000, pipeline_run=summary["run_id"]).items


def test_sigterm_during_training_exits_143_and_the_same_command_resumes(runs):
    proc, summary, records = runs["sigterm"]
    assert proc.returncode == 143, proc.stderr[-3000:]
    assert Path(records).read_text().count("SIGTERM") == 1
    stopped = re.search(
        r"error: pipeline training_pipeline failed: step train_lora: SIGTERM: stopped at step 2/(\d+)", proc.stderr
    )
    assert stopped, proc.stderr[-3000:]
    assert summary["steps"]["train_lora"] == "failed" and "evaluate_adapter" not in summary["steps"]
    # ZenML deleted the failed step's output folder; the checkpoint lives under <home>/training-state
    assert [p.name for p in runs["training_state_after_sigterm"]] == ["checkpoint-00000002"]

    proc, retry, _ = runs["retry"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert retry["steps"]["train_lora"] == "completed" and retry["steps"]["validate_dataset"] == "cached"
    assert retry["adapter"]["resumed_from_step"] == 2 and retry["adapter"]["global_step"] == int(stopped.group(1))
    assert retry["registration"]["name"] == "faults-sigterm"
    assert not list(Path(os.environ["DEEPSYNTH_HOME"]).glob("training-state/*/checkpoints/*"))  # cleaned up


def _scan(root, needles):
    hits = []
    for path in Path(root).rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            hits += [(str(path), n) for n in needles if n.encode() in data]
    return hits


def test_an_environment_reference_in_a_user_string_is_refused_before_any_run(runs, zenml_client):
    proc, summary, _ = runs["env_reference"]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert summary["exit_code"] == 2 and "takes no environment references" in summary["error"]
    assert "--set run_name: '${HF_TOKEN}'" in proc.stderr and "(also in ingest.instruction_prompt)" in proc.stderr
    assert not [r.name for r in zenml_client.list_pipeline_runs(size=1000).items if CANARY_ENV in r.name]


def test_secret_canary_appears_nowhere(runs, zenml_client):
    import mlflow

    for key in ("env_reference", "outage", "register"):  # every line the runs printed, exceptions included
        proc = runs[key][0]
        assert not [n for n in (CANARY_ENV, CANARY_PASSWORD, CANARY_SECRET) if n in proc.stdout + proc.stderr]
    # MLflow: params, tags and metrics of every run, tags of every model version
    from pipelines.local_stack import use_stack_tracking

    use_stack_tracking()
    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    mlflow_runs = client.search_runs(experiments, max_results=1000)
    assert mlflow_runs
    text = json.dumps([[r.data.params, r.data.tags, r.data.metrics] for r in mlflow_runs])
    text += json.dumps([dict(mv.tags) for mv in client.search_model_versions(f"name = '{MODEL}'")])
    assert CANARY_ENV not in text and CANARY_PASSWORD not in text and CANARY_SECRET not in text
    # Every file of the ZenML store (artifact store, step logs, MLflow db and artifacts) and the project home.
    # The ZenML secret lives in ZenML's own database by design: only there may it appear.
    roots = [os.environ["ZENML_CONFIG_PATH"], os.environ["DEEPSYNTH_HOME"]]
    hits = [h for r in roots for h in _scan(r, [CANARY_ENV, CANARY_PASSWORD, CANARY_SECRET])]
    hits = [(p, n) for p, n in hits if not (n == CANARY_SECRET and Path(p).name.startswith("zenml.db"))]
    assert hits == []
    assert zenml_client.get_secret("deepsynth-canary").secret_values["hub_token"] == CANARY_SECRET  # it was stored
    # the scan reached the step logs and the MLflow store
    assert list(Path(os.environ["ZENML_CONFIG_PATH"]).rglob("mlflow.db"))
    assert [p for p in Path(zenml_client.active_stack.artifact_store.path).rglob("*") if "logs" in p.parts]


def test_no_artifact_file_of_the_runs_is_a_pickle(runs, zenml_client):
    store = Path(zenml_client.active_stack.artifact_store.path)
    files = [p for p in store.rglob("*") if p.is_file()]
    assert files
    pickles = [p for p in files if p.suffix in {".pkl", ".pickle"} or p.read_bytes()[:2] in {b"\x80\x04", b"\x80\x05"}]
    assert pickles == []
