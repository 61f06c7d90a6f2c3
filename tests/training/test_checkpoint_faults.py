"""Checkpoint faults: torn writes (a real kill -9 mid-write), missing/truncated files, changed config or data.

See RELIABILITY.md. The unit tests drive the real checkpoint code on a small real optimizer; the
kill test runs the real trainer in a subprocess and kills it while a checkpoint is half written.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from support.tamper import flip_file_byte

from deepsynth.errors import ConfigError
from deepsynth.training import checkpoint_io, fingerprints
from deepsynth.training import checkpoint_layout as layout
from deepsynth.training import checkpointing as ck

WORKER = Path(__file__).with_name("train_worker.py")


def _optim():
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return layer, optimizer, scheduler


def _train_and_save(out, steps, fingerprint=None, keep=5):
    layer, optimizer, scheduler = _optim()
    saved = {}
    for step in range(1, steps + 1):
        layer(torch.ones(2, 4)).sum().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        tensors = {n: p.detach().clone() for n, p in layer.named_parameters()}
        ck.save_checkpoint(
            out,
            step,
            tensors,
            optimizer,
            scheduler,
            {"epoch": 0, "step_in_epoch": step},
            keep=keep,
            fingerprint=fingerprint,
        )
        saved[step] = tensors
    return saved


FINGERPRINT = {"config": {"learning_rate": 0.01, "lora_rank": 8, "seed": 42}, "dataset": "a" * 64}


def test_checkpoint_index_lists_every_file_with_its_sha256(tmp_path):
    _train_and_save(tmp_path, 1, FINGERPRINT)
    (path,) = ck.list_checkpoints(tmp_path)
    index = ck.read_index(path)
    assert set(index["files"]) == {
        layout.WEIGHTS,
        layout.OPTIMIZER_TENSORS,
        layout.OPTIMIZER_META,
        layout.RNG_TENSORS,
        layout.STATE,
    }
    assert index["step"] == 1 and index["fingerprint"] == FINGERPRINT
    assert checkpoint_io.verify_checkpoint(path) is None
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".tmp")]


@pytest.mark.parametrize("damage", ["truncate", "delete", "flip_byte", "delete_index"])
def test_damaged_latest_falls_back_to_previous_complete_with_a_warning(tmp_path, caplog, damage):
    saved = _train_and_save(tmp_path, 3)
    latest = ck.list_checkpoints(tmp_path)[-1]
    target = latest / (ck.INDEX if damage == "delete_index" else layout.WEIGHTS)
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:-7])
    elif damage == "flip_byte":
        flip_file_byte(target, -1)
    else:
        target.unlink()
    with caplog.at_level(logging.WARNING, logger="deepsynth.training.checkpointing"):
        resolved = ck.resolve_checkpoint(tmp_path, "latest")
    assert resolved.name == "checkpoint-00000002"
    text = caplog.text
    assert "checkpoint-00000003" in text and "falling back" in text
    assert (ck.INDEX if damage == "delete_index" else layout.WEIGHTS) in text
    # the damaged one is moved aside, never read again; the fallback loads the step-2 weights
    assert not latest.exists() and (latest.parent / "corrupt-checkpoint-00000003").is_dir()
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["checkpoint-00000001", "checkpoint-00000002"]
    _, optimizer, scheduler = _optim()
    tensors, state = ck.load_checkpoint(resolved, optimizer, scheduler)
    assert state["global_step"] == 2
    torch.testing.assert_close(tensors["weight"], saved[2]["weight"], atol=0, rtol=0)


def test_no_complete_checkpoint_left_is_a_clear_error_not_a_restart(tmp_path):
    _train_and_save(tmp_path, 2)
    for path in ck.list_checkpoints(tmp_path):
        (path / layout.OPTIMIZER_TENSORS).write_bytes(b"")
    with pytest.raises(ck.CheckpointError, match="no complete checkpoint.*Refusing to restart from step 0"):
        ck.resolve_checkpoint(tmp_path, "latest")


def test_named_checkpoint_that_fails_verification_is_an_error(tmp_path):
    _train_and_save(tmp_path, 2)
    path = ck.list_checkpoints(tmp_path)[-1]
    (path / layout.STATE).write_text("{}")
    with pytest.raises(ck.CheckpointError, match="trainer_state.json"):
        ck.resolve_checkpoint(tmp_path, str(path))
    _, optimizer, scheduler = _optim()
    with pytest.raises(ck.CheckpointError):
        ck.load_checkpoint(path, optimizer, scheduler)


def test_torn_temp_folder_of_a_dead_writer_is_ignored_and_removed(tmp_path):
    _train_and_save(tmp_path, 1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    torn = tmp_path / "checkpoints" / f".tmp-checkpoint-00000002-{int(dead.stdout)}"
    torn.mkdir()
    (torn / layout.WEIGHTS).write_bytes(b"\x00" * 10)
    assert ck.resolve_checkpoint(tmp_path, "latest").name == "checkpoint-00000001"
    assert not torn.exists()


def test_changed_config_or_dataset_is_refused_unless_forced(tmp_path, caplog):
    _train_and_save(tmp_path, 2, FINGERPRINT)
    changed = {"config": {**FINGERPRINT["config"], "learning_rate": 0.02}, "dataset": FINGERPRINT["dataset"]}
    with pytest.raises(ConfigError, match=r"learning_rate: 0.01 → 0.02.*resume_force"):
        ck.resolve_checkpoint(tmp_path, "latest", fingerprint=changed)
    other_data = {**FINGERPRINT, "dataset": "b" * 64}
    with pytest.raises(ConfigError, match="dataset content hash"):
        ck.resolve_checkpoint(tmp_path, "latest", fingerprint=other_data)
    assert ck.resolve_checkpoint(tmp_path, "latest", fingerprint=FINGERPRINT).name == "checkpoint-00000002"
    with caplog.at_level(logging.WARNING, logger="deepsynth.training.checkpointing"):
        assert ck.resolve_checkpoint(tmp_path, "latest", fingerprint=changed, force=True).name == "checkpoint-00000002"
    assert "resume_force" in caplog.text and "learning_rate" in caplog.text


def test_dataset_fingerprint_follows_shard_content(rendered, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(rendered.path, copy)
    assert fingerprints.dataset_fingerprint(copy) == fingerprints.dataset_fingerprint(rendered.path)
    shard = copy / json.loads((copy / "manifest.json").read_text())["shards"][0]
    shard.write_bytes(shard.read_bytes() + b"\0")
    assert fingerprints.dataset_fingerprint(copy) != fingerprints.dataset_fingerprint(rendered.path)


def test_fingerprint_ignores_paths_and_logging_but_not_hyperparameters(tiny_config):
    a = fingerprints.config_fingerprint(tiny_config(output_dir="/a", save_steps=1, progress_bar=False))
    b = fingerprints.config_fingerprint(
        tiny_config(output_dir="/b", save_steps=5, progress_bar=True, resume_force=True)
    )
    assert a == b
    assert a != fingerprints.config_fingerprint(tiny_config(learning_rate=0.5))


@pytest.mark.slow
def test_kill_9_while_a_checkpoint_is_written_resumes_from_the_last_complete_one(tiny_config, rendered, tmp_path):
    out = tmp_path / "run"
    config = tiny_config(
        output_dir=str(out), num_epochs=3, save_steps=2, save_total_limit=3, resume_from_checkpoint="latest"
    )
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(json.dumps(config.to_dict()))
    env = {**os.environ, checkpoint_io.WRITE_DELAY_ENV: "0.5"}  # 5 files x 0.5 s: a wide window to land the kill in
    victim = subprocess.Popen(
        [sys.executable, str(WORKER), str(cfg_path), str(rendered.path), str(tmp_path / "v.json")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    root = out / "checkpoints"
    deadline = time.time() + 180
    torn = []
    while True:  # wait until checkpoint 2 is complete and checkpoint 4 is half written
        assert victim.poll() is None, (
            "the run ended before it could be killed: " + victim.stderr.read().decode()[-2000:]
        )
        assert time.time() < deadline
        torn = [p for p in root.glob(".tmp-checkpoint-00000004-*")] if root.is_dir() else []
        if torn and any(torn[0].iterdir()) and (root / "checkpoint-00000002" / ck.INDEX).is_file():
            break
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    assert torn[0].is_dir() and not (torn[0] / ck.INDEX).exists()  # really torn: files but no index
    assert [p.name for p in ck.list_checkpoints(out)] == ["checkpoint-00000002"]

    resumed = subprocess.run(
        [sys.executable, str(WORKER), str(cfg_path), str(rendered.path), str(tmp_path / "r.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    info = json.loads((tmp_path / "r.rank0.json").read_text())["metrics"]
    assert info["resumed_from_step"] == 2 and info["global_step"] == 6
    assert not list(root.glob(".tmp-checkpoint-*"))  # the torn folder was cleaned up
    assert "removing torn checkpoint" in resumed.stderr.decode()
    assert (out / "adapter_model.safetensors").is_file()


class Payload:
    """Unpickling this creates a marker file: proof that a pickle was executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_planted_pickle_in_a_checkpoint_is_never_executed(tmp_path):
    import hashlib
    import pickle

    _train_and_save(tmp_path / "run", 1)
    (path,) = ck.list_checkpoints(tmp_path / "run")
    marker = tmp_path / "executed"
    # 1. extra pickle files beside the real ones are never opened: resume works, nothing runs
    for name in ("optimizer.pt", "pytorch_model.bin", "rng_state.pth"):
        (path / name).write_bytes(pickle.dumps(Payload(marker)))
    _, optimizer, scheduler = _optim()
    ck.load_checkpoint(ck.resolve_checkpoint(tmp_path / "run", "latest"), optimizer, scheduler)
    assert not marker.exists()
    # 2. a pickle in place of the weights, with the index rewritten to match (a tampered checkpoint):
    #    the safetensors reader rejects it; nothing unpickles it
    weights = path / layout.WEIGHTS
    weights.write_bytes(pickle.dumps(Payload(marker)))
    index = ck.read_index(path)
    index["files"][layout.WEIGHTS] = {
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "size": weights.stat().st_size,
    }
    (path / ck.INDEX).write_text(json.dumps(index))
    _, optimizer, scheduler = _optim()
    with pytest.raises(ck.CheckpointError, match="not valid safetensors"):
        ck.load_checkpoint(path, optimizer, scheduler)
    assert not marker.exists()


def test_only_rank_0_changes_the_checkpoints_folder(tmp_path, monkeypatch):
    _train_and_save(tmp_path, 2)
    latest = ck.list_checkpoints(tmp_path)[-1]
    (latest / layout.WEIGHTS).unlink()
    monkeypatch.setenv("RANK", "1")  # another rank of a data-parallel run resolves the same checkpoint
    assert ck.resolve_checkpoint(tmp_path, "latest").name == "checkpoint-00000001"
    assert latest.is_dir()  # left for rank 0 to move aside
    monkeypatch.setenv("RANK", "0")
    assert ck.resolve_checkpoint(tmp_path, "latest").name == "checkpoint-00000001"
    assert not latest.exists()
