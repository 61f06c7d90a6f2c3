"""Data-parallel training launched with torchrun from deepsynth.training.launch: real gloo ranks on CPU."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest
import torch
from support.adapters import assert_same_adapter

from deepsynth.errors import ConfigError
from deepsynth.training.checkpointing import list_checkpoints
from deepsynth.training.config import TrainerConfig
from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer
from deepsynth.training.launch import TrainingLaunchError, launch_training, resolve_num_processes, torchrun_command
from deepsynth.training.plan import epoch_order, step_target_counts


def test_step_target_counts_add_every_ranks_share():
    targets = [3, 5, 7, 11, 13]
    one = step_target_counts(targets, TrainerConfig(model_name="tiny", batch_size=4), 0, 1)
    assert one == [sum(targets[i] for i in epoch_order(5, 42, 0, 0, 1)[:4]), targets[epoch_order(5, 42, 0, 0, 1)[4]]]
    # Two ranks, batch 1, two micro-batches per step: 5 documents padded to 6, so 2 steps of 4 and 2 examples.
    two = step_target_counts(
        targets, TrainerConfig(model_name="tiny", batch_size=1, gradient_accumulation_steps=2), 0, 2
    )
    shards = [epoch_order(5, 42, 0, rank, 2) for rank in range(2)]
    assert two == [sum(targets[s[i]] for s in shards for i in (0, 1)), sum(targets[s[2]] for s in shards)]


def test_process_count_and_command():
    assert resolve_num_processes(TrainerConfig(model_name="tiny", device="cpu", num_processes=3)) == 3
    assert resolve_num_processes(TrainerConfig(model_name="tiny", device="cpu", num_processes=0)) == 1
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="num_processes: 2 CUDA processes need as many GPUs; 0 visible"):
            resolve_num_processes(TrainerConfig(model_name="tiny", device="cuda", num_processes=2))
    command = torchrun_command("c.json", "data", "r.json", 2)
    assert command[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "--max-restarts=0"]
    with pytest.raises(ValueError, match="num_processes must be 0"):
        TrainerConfig(model_name="tiny", num_processes=-1)


@pytest.mark.slow
def test_two_ranks_train_the_adapter_of_one_process_with_the_same_global_batch(
    tiny_config, rendered, tmp_path, monkeypatch
):
    common = dict(num_epochs=2, lora_dropout=0.0, save_steps=2, batch_size=1)
    # The same global batch: two micro-batches of one document per step, in one process or one per rank.
    reference = tiny_config(gradient_accumulation_steps=2, output_dir=str(tmp_path / "one"), **common)
    ref_metrics, _ = DeepSynthLoRATrainer(reference).train(rendered)

    config = tiny_config(num_processes=2, output_dir=str(tmp_path / "two"), **common)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    metrics = launch_training(config, rendered.path, 2)
    assert list(scratch.iterdir()) == []  # no torchelastic_* log folder left behind by torchrun
    assert metrics["world_size"] == 2 and metrics["rank"] == 0
    assert metrics["global_step"] == ref_metrics["global_step"] == 4 and metrics["train_samples"] == 8
    assert_same_adapter(tmp_path / "two", tmp_path / "one")
    for (step, loss, lr), (ref_step, ref_loss, ref_lr) in zip(
        metrics["loss_curve"], ref_metrics["loss_curve"], strict=True
    ):
        assert (step, lr) == (ref_step, ref_lr) and loss == pytest.approx(
            ref_loss, abs=1e-6
        )  # reported in float64 vs 32
    # Only rank 0 wrote checkpoints, into the one state folder.
    assert [p.name for p in (tmp_path / "two" / "checkpoints").iterdir()] == ["checkpoint-00000002"]


@pytest.mark.slow
def test_one_forward_over_the_global_batch_matches_to_float_rounding(tiny_config, rendered, tmp_path):
    """The loss is the token mean over the global batch however it is split; only rounding differs."""
    common = dict(num_epochs=2, lora_dropout=0.0, learning_rate=1e-3)
    split, _ = DeepSynthLoRATrainer(
        tiny_config(batch_size=1, gradient_accumulation_steps=2, output_dir=str(tmp_path / "split"), **common)
    ).train(rendered)
    whole, _ = DeepSynthLoRATrainer(tiny_config(batch_size=2, output_dir=str(tmp_path / "whole"), **common)).train(
        rendered
    )
    for (_, loss, _), (_, ref, _) in zip(split["loss_curve"], whole["loss_curve"], strict=True):
        assert loss == pytest.approx(ref, rel=1e-5)
    assert_same_adapter(tmp_path / "split", tmp_path / "whole", atol=1e-4)  # AdamW amplifies rounding in tiny gradients


@pytest.mark.slow
def test_a_failing_rank_fails_the_launch_with_the_ranks_output(tiny_config, rendered, tmp_path):
    config = tiny_config(num_processes=2, train_split="no-such-split")
    with pytest.raises(TrainingLaunchError, match="torchrun with 2 processes exited with code 1") as failure:
        launch_training(config, rendered.path, 2)
    assert "no documents in split 'no-such-split'" in str(failure.value)
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_a_hung_rank_times_out_the_others_and_the_launch_fails(tiny_config, rendered, tmp_path):
    import signal
    import threading
    import time

    import psutil

    config = tiny_config(num_processes=2, batch_size=1, num_epochs=50, save_steps=1, distributed_timeout_s=10)
    outcome = {}

    def launch():
        try:
            outcome["metrics"] = launch_training(config, rendered.path, 2)
        except TrainingLaunchError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=launch)
    thread.start()
    deadline, hung = time.monotonic() + 240, None
    while hung is None:  # rank 1, once both ranks train (rank 0 has written a checkpoint)
        assert thread.is_alive() and time.monotonic() < deadline, outcome
        ranks = [p for p in psutil.Process().children(recursive=True) if _environ(p).get("RANK") == "1"]
        hung = ranks[0] if ranks and list_checkpoints(tmp_path / "out") else None
        time.sleep(0.05)
    hung.send_signal(signal.SIGSTOP)  # alive but silent: only the collective timeout can notice
    try:
        # Once rank 0 has timed out, torchrun sends the others SIGTERM, then SIGKILL 30 s later. A stopped
        # process cannot act on its SIGTERM: let it run once the signal is pending, as a hung rank would.
        give_up = time.monotonic() + 180  # then the join below reports the hang
        while thread.is_alive() and not _pending(hung.pid, signal.SIGTERM) and time.monotonic() < give_up:
            time.sleep(0.05)
        with contextlib.suppress(psutil.Error):
            hung.send_signal(signal.SIGCONT)
        thread.join(timeout=180)
    finally:
        with contextlib.suppress(psutil.Error):
            hung.send_signal(signal.SIGCONT)
            hung.kill()
    assert not thread.is_alive(), "the launch hung on a stopped rank"
    message = str(outcome["error"])
    assert "rank 0: " in message and "failed: another rank died, hung past distributed_timeout_s" in message, message
    assert list_checkpoints(tmp_path / "out")  # what a rerun resumes from


def _pending(pid: int, signum: int) -> bool:
    """``signum`` was sent to the process ``pid`` and waits to be delivered (Linux: /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # exited meanwhile (or no /proc: then torchrun's SIGKILL ends it)
        return False
    line = next(line for line in status.splitlines() if line.startswith("ShdPnd:"))
    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)


def _environ(proc) -> dict:
    try:
        return proc.environ()
    except Exception:  # noqa: BLE001  (exited meanwhile)
        return {}
