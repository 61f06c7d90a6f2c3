import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import torch
from safetensors.torch import load_file

from deepsynth.adapter_layout import native_key

WORKER = Path(__file__).with_name("train_worker.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_agree_and_only_rank_zero_logs_and_saves(tiny_config, rendered, tmp_path):
    config = tiny_config(num_epochs=2, batch_size=1, save_steps=2, lora_dropout=0.1)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config.to_dict()))
    port, procs = free_port(), []
    store = str(tmp_path)
    for rank in range(2):
        env = dict(
            {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            MLFLOW_STORE=store,
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), str(config_path), str(rendered.path), str(tmp_path / "result.json")],
                env=env,
                stderr=subprocess.PIPE,
                cwd=tmp_path,
            )
        )  # MLflow's default artifact root is ./mlruns
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-3000:]

    results = [json.loads((tmp_path / f"result.rank{r}.json").read_text()) for r in range(2)]
    weights = [load_file(str(tmp_path / f"result.rank{r}.safetensors")) for r in range(2)]
    assert set(weights[0]) == set(weights[1])
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], atol=1e-6, rtol=0)
    m0, m1 = results[0]["metrics"], results[1]["metrics"]
    assert m0["world_size"] == m1["world_size"] == 2
    # 4 documents / (2 ranks x batch 1) = 2 steps per epoch, each step sees 2 examples
    assert m0["global_step"] == 4 and m0["train_samples"] == 8
    assert m0["loss_curve"] == m1["loss_curve"]  # the reported loss is the all-rank mean
    assert results[0]["calls"] == {"save_output": 1, "checkpoint_writes": 1}
    assert results[1]["calls"] == {"save_output": 0, "checkpoint_writes": 0}
    assert results[0]["logged"] is True and results[1]["logged"] is False
    client = mlflow.MlflowClient(f"sqlite:///{store}/rank1.db")
    [run] = client.search_runs(experiment_ids=["0"])
    assert run.data.metrics == {} and run.data.params == {}
    saved = load_file(str(Path(config.output_dir) / "adapter_model.safetensors"))
    for name, value in saved.items():
        peft_name = (
            native_key(name)
            .replace(".lora_A.weight", ".lora_A.default.weight")
            .replace(".lora_B.weight", ".lora_B.default.weight")
        )
        torch.testing.assert_close(value, weights[0][peft_name])
