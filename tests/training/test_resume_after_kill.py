import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deepsynth.training.checkpointing import list_checkpoints

WORKER = Path(__file__).with_name("train_worker.py")


def launch(config, dataset, result, delay=0.0):
    path = Path(result).with_suffix(".config.json")
    path.write_text(json.dumps(config.to_dict()))
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(path), str(dataset), str(result), str(delay)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_adapter(tiny_config, rendered, tmp_path):
    common = dict(num_epochs=6, lora_dropout=0.1, save_steps=2, save_total_limit=2, resume_from_checkpoint="latest")
    # Uninterrupted reference, in its own process like the others.
    ref = launch(tiny_config(output_dir=str(tmp_path / "ref"), **common), rendered.path, tmp_path / "ref.json")
    assert ref.wait(timeout=240) == 0, ref.stderr.read().decode()[-2000:]

    out = tmp_path / "killed"
    config = tiny_config(output_dir=str(out), **common)
    victim = launch(config, rendered.path, tmp_path / "victim.json", delay=0.4)
    deadline = time.time() + 180
    while not any(p.name == "checkpoint-00000004" for p in list_checkpoints(out)):
        assert victim.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    assert not (out / "adapter_model.safetensors").exists()
    last = list_checkpoints(out)[-1]
    steps_done = int(last.name.split("-")[1])
    assert 4 <= steps_done < 12

    resumed = launch(config, rendered.path, tmp_path / "resumed.json")
    assert resumed.wait(timeout=240) == 0, resumed.stderr.read().decode()[-2000:]
    info = json.loads((tmp_path / "resumed.rank0.json").read_text())["metrics"]
    assert info["resumed_from_step"] == steps_done and info["global_step"] == 12

    expected = load_file(str(tmp_path / "ref.rank0.safetensors"))
    got = load_file(str(tmp_path / "resumed.rank0.safetensors"))
    assert set(expected) == set(got)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-6, rtol=0)
    final_ref = load_file(str(tmp_path / "ref" / "adapter_model.safetensors"))
    final_resumed = load_file(str(out / "adapter_model.safetensors"))
    for name in final_ref:
        torch.testing.assert_close(final_resumed[name], final_ref[name], atol=1e-6, rtol=0)
    ref_curve = json.loads((tmp_path / "ref.rank0.json").read_text())["metrics"]["loss_curve"]
    assert info["loss_curve"] == ref_curve  # the history travels in the checkpoint


def test_checkpoints_are_complete_safetensors_and_pruned(tiny_config, rendered, tmp_path):
    from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer

    metrics, checkpoints = DeepSynthLoRATrainer(tiny_config(save_steps=1, save_total_limit=2)).train(rendered)
    assert [Path(c).name for c in checkpoints] == ["checkpoint-00000004", "checkpoint-00000005"]
    for checkpoint in checkpoints:
        files = {p.name for p in Path(checkpoint).iterdir()}
        assert files == {
            "trainable.safetensors",
            "optimizer.safetensors",
            "optimizer.json",
            "rng.safetensors",
            "trainer_state.json",
            "checkpoint_index.json",
        }
        state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
        assert state["global_step"] == int(Path(checkpoint).name.split("-")[1])
        trainable = load_file(str(Path(checkpoint) / "trainable.safetensors"))
        assert len(trainable) == 28  # A and B of 14 adapted projections
        # AdamW keeps step, exp_avg and exp_avg_sq per parameter
        assert len(load_file(str(Path(checkpoint) / "optimizer.safetensors"))) == 3 * len(trainable)
