"""Multi-node training as a Kubeflow PyTorchJob: the dry run's manifests parse and validate, and the
pods' torchrun command trains for real as two "nodes" (two torchrun agents) on this machine."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deepsynth.errors import ConfigError
from deepsynth.training.config import TrainerConfig
from pipelines import pytorchjob
from pipelines.config_loading import load_run_config

ROOT = Path(__file__).parents[2]
CONFIG = ROOT / "configs" / "k8s-multinode.yaml"
DATASET = "/shared/datasets/aclsum-base"


def dry_run(*extra: str) -> subprocess.CompletedProcess:
    """``python -m pipelines.pytorchjob`` in its own process, as a user runs it."""
    env = {**os.environ, "DEEPSYNTH_REGISTRY": "registry.example.com/ds"}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.pytorchjob", "--config", str(CONFIG), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


def test_dry_run_renders_a_configmap_and_a_pytorchjob_that_validate():
    proc = dry_run("--dataset", DATASET, "--job-name", "ds-train", "--namespace", "ml")
    assert proc.returncode == 0, proc.stderr[-2000:]
    config_map, job = yaml.safe_load_all(proc.stdout)
    pytorchjob.validate([config_map, job])  # the Kubernetes client's models accept both as parsed back
    train = TrainerConfig.from_json(config_map["data"]["train.json"])
    assert (train.output_dir, train.state_dir, train.resume_from_checkpoint) == (
        "/shared/runs/ds-train/adapter",
        "/shared/runs/ds-train",
        "latest",
    )
    assert train.device == "cuda" and train.num_processes == 0 and train.save_steps == 50
    assert (job["apiVersion"], job["kind"], job["metadata"]) == (
        "kubeflow.org/v1",
        "PyTorchJob",
        {"name": "ds-train", "namespace": "ml"},
    )
    assert job["spec"]["nprocPerNode"] == "8" and job["spec"]["runPolicy"]["backoffLimit"] == pytorchjob.BACKOFF_LIMIT
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert {role: r["replicas"] for role, r in replicas.items()} == {"Master": 1, "Worker": 1}
    for replica in replicas.values():
        pod = replica["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == "registry.example.com/ds/deepsynth-gpu:0.1.0"
        assert container["resources"] == {"limits": {"nvidia.com/gpu": "8"}, "requests": {"memory": "512G"}}
        command = container["command"]
        assert command[:3] == ["python", "-m", "torch.distributed.run"] and "--nnodes=2" in command
        assert "--nproc-per-node=8" in command and "--rdzv-endpoint=$(MASTER_ADDR):$(MASTER_PORT)" in command
        assert command[command.index("deepsynth.training.launch") + 1 :] == [
            "/etc/deepsynth/train.json",
            DATASET,
            "/shared/runs/ds-train/result.json",
            "auto",
        ]
        assert {"name": "shared", "persistentVolumeClaim": {"claimName": "deepsynth-shared"}} in pod["volumes"]
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_node_count_and_refusals(monkeypatch):
    monkeypatch.setenv("DEEPSYNTH_REGISTRY", "r.example.com")
    config = load_run_config(CONFIG, ["deployment.nodes=4"])
    _, job = pytorchjob.training_manifests(config, DATASET, "j", "ns")
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 3
    with pytest.raises(ConfigError, match="must be a rendered dataset on the shared volume"):
        pytorchjob.training_manifests(config, "/data/x", "j", "ns")
    with pytest.raises(ConfigError, match="deployment.shared_volume: required when nodes > 1"):
        load_run_config(CONFIG, ["deployment.shared_volume=null"])
    with pytest.raises(ConfigError, match="train_lora runs on one machine; for 2 nodes run the data pipeline"):
        load_run_config(CONFIG, ["pipeline=training"])
    broken = pytorchjob.training_manifests(load_run_config(CONFIG, ["deployment.gpu_memory=lots"]), DATASET, "j", "ns")
    with pytest.raises(ConfigError, match="PyTorchJob j: invalid manifest: .*lots"):
        pytorchjob.validate(broken)
    proc = dry_run("--dataset", "/tmp/x")
    assert (
        proc.returncode == 2 and proc.stdout == "" and "must be a rendered dataset on the shared volume" in proc.stderr
    )


@pytest.mark.slow
def test_the_pods_command_trains_across_two_torchrun_agents(rendered, deepsynth_home, tmp_path, monkeypatch):
    """Each 'node' is a torchrun agent on this machine, run with the job's own command line and config."""
    shared = tmp_path / "shared"
    shutil.copytree(rendered.path, shared / "datasets" / "tiny")
    (shared / "home").mkdir(parents=True)
    for entry in Path(deepsynth_home).iterdir():  # the tiny model, as a mirror on the shared volume
        (shared / "home" / entry.name).symlink_to(entry)
    small = [
        "train.model_name=tiny",
        "train.model_revision=null",
        "train.device=cpu",
        "train.mode=tiny",
        "train.num_processes=1",
        "train.batch_size=1",
        "train.num_epochs=1",
        "train.max_length=256",
        "train.max_summary_tokens=32",
        "train.save_steps=1",
        "deployment.gpu_count=0",
        "deployment.gpu_memory=null",
    ]
    monkeypatch.setenv("DEEPSYNTH_REGISTRY", "r.example.com")
    config_map, job = pytorchjob.training_manifests(
        load_run_config(CONFIG, small), "/shared/datasets/tiny", "cpu-job", "ns"
    )
    pytorchjob.validate([config_map, job])
    local = str(shared)
    (tmp_path / "train.json").write_text(config_map["data"]["train.json"].replace("/shared", local))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nodes = []
    for role in ("Master", "Worker"):
        command = job["spec"]["pytorchReplicaSpecs"][role]["template"]["spec"]["containers"][0]["command"]
        command = [
            sys.executable
            if part == "python"
            else part.replace("$(MASTER_ADDR):$(MASTER_PORT)", f"127.0.0.1:{port}")
            .replace("/etc/deepsynth/train.json", str(tmp_path / "train.json"))
            .replace("/shared", local)
            for part in command
        ]
        nodes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT))
    for node in nodes:
        output = node.communicate(timeout=300)[0]
        assert node.returncode == 0, output[-3000:]
    result = json.loads((shared / "runs" / "cpu-job" / "result.json").read_text())["metrics"]
    assert result["world_size"] == 2 and result["global_step"] == 2 and result["train_samples"] == 4
    assert (shared / "runs" / "cpu-job" / "adapter" / "adapter_model.safetensors").is_file()
