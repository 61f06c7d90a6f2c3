"""SIGTERM during training → a checkpoint and a clean exit 143, and the retry resumes from it;
a resume after the config or dataset changed is refused unless forced (the trainer end to end)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepsynth.errors import ConfigError
from deepsynth.training.checkpointing import list_checkpoints, read_index
from deepsynth.training.signals import TrainingInterrupted

WORKER = Path(__file__).with_name("train_worker.py")
# train_worker.py as a program that exits like the CLI does: a DeepSynthError's exit code, no traceback
EXITS_LIKE_THE_CLI = (
    "import runpy, sys\n"
    "from deepsynth.errors import DeepSynthError\n"
    "sys.argv = sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
    "except DeepSynthError as exc:\n"
    "    print(f'error: {exc}', file=sys.stderr)\n"
    "    sys.exit(exc.exit_code)\n"
)


def test_sigterm_in_process_checkpoints_at_the_step_boundary_and_restores_the_handler(tiny_config, rendered, tmp_path):
    from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer

    before = signal.getsignal(signal.SIGTERM)
    trainer = DeepSynthLoRATrainer(tiny_config(num_epochs=3, output_dir=str(tmp_path / "out")))
    step, calls = trainer._step, []

    def step_then_sigterm(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the signal lands in the middle of the second optimizer step
            os.kill(os.getpid(), signal.SIGTERM)
        return step(*args, **kwargs)

    trainer._step = step_then_sigterm
    with pytest.raises(TrainingInterrupted, match="stopped at step 2/6") as info:
        trainer.train(rendered)
    assert info.value.exit_code == 143
    assert [p.name for p in list_checkpoints(tmp_path / "out")] == ["checkpoint-00000002"]  # save_steps is 0
    assert Path(info.value.checkpoint).name == "checkpoint-00000002"
    assert len(calls) == 2 and not (tmp_path / "out" / "adapter_model.safetensors").exists()
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.slow
def test_sigterm_subprocess_exits_143_with_a_checkpoint_and_the_retry_resumes_from_it(tiny_config, rendered, tmp_path):
    out = tmp_path / "run"
    config = tiny_config(output_dir=str(out), num_epochs=6, save_steps=3, resume_from_checkpoint="latest")
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(json.dumps(config.to_dict()))
    command = [sys.executable, "-c", EXITS_LIKE_THE_CLI, str(WORKER), str(cfg_path), str(rendered.path)]
    victim = subprocess.Popen(
        command + [str(tmp_path / "v.json"), "0.5"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 180
    while not list_checkpoints(out):  # step 3's periodic checkpoint: training is under way
        assert victim.poll() is None, victim.stderr.read().decode()[-2000:]
        assert time.time() < deadline
        time.sleep(0.02)
    sent = time.time()
    victim.send_signal(signal.SIGTERM)
    code = victim.wait(timeout=60)
    grace = time.time() - sent
    stderr = victim.stderr.read().decode()
    assert code == 143, stderr[-2000:]
    assert grace < 15, grace  # one optimizer step (0.5 s injected delay) plus one checkpoint write
    assert "received SIGTERM" in stderr and "rerun with resume_from_checkpoint: latest" in stderr
    assert "Traceback" not in stderr
    checkpoint = list_checkpoints(out)[-1]
    stopped_at = read_index(checkpoint)["step"]
    # Written because of the signal at the next step boundary: 4 or 5, or 3 when the signal lands
    # between step 3's periodic checkpoint becoming visible and the stop check that follows it.
    assert stopped_at in (3, 4, 5)
    assert not (out / "adapter_model.safetensors").exists()

    retry = subprocess.run(
        command + [str(tmp_path / "r.json")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=240
    )
    assert retry.returncode == 0, retry.stderr.decode()[-2000:]
    metrics = json.loads((tmp_path / "r.rank0.json").read_text())["metrics"]
    assert metrics["resumed_from_step"] == stopped_at and metrics["global_step"] == 12
    assert [s for s, _, _ in metrics["loss_curve"]] == list(range(1, 13))  # history before the stop kept
    assert (out / "adapter_model.safetensors").is_file()


def test_resume_after_a_config_or_dataset_change_is_refused_unless_forced(tiny_config, rendered, tmp_path, caplog):
    from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer

    out = str(tmp_path / "out")
    common = dict(
        output_dir=out, num_epochs=1, save_steps=1, resume_from_checkpoint="latest"
    )  # 2 steps, checkpoint at 1
    DeepSynthLoRATrainer(tiny_config(**common)).train(rendered)
    (checkpoint,) = list_checkpoints(out)
    assert read_index(checkpoint)["fingerprint"]["config"]["optimizer.learning_rate"] == 1e-2
    with pytest.raises(ConfigError, match=r"learning_rate: 0.01 → 0.02"):
        DeepSynthLoRATrainer(tiny_config(**common, learning_rate=2e-2)).train(rendered)
    changed = tmp_path / "changed"
    shutil.copytree(rendered.path, changed)
    shard = changed / json.loads((changed / "manifest.json").read_text())["shards"][0]
    import pyarrow.parquet as pq

    table = pq.read_table(shard)
    summaries = table.column("summary").to_pylist()
    summaries[0] = summaries[0] + " Edited."
    pq.write_table(table.set_column(table.schema.get_field_index("summary"), "summary", [summaries]), shard)
    with pytest.raises(ConfigError, match="dataset content hash"):
        DeepSynthLoRATrainer(tiny_config(**common)).train(changed)
    # the same config and data resume; forced, a changed config resumes too (with a warning)
    metrics, _ = DeepSynthLoRATrainer(tiny_config(**common, learning_rate=2e-2, resume_force=True)).train(rendered)
    assert metrics["resumed_from_step"] == 1 and metrics["global_step"] == 2
    assert "resume_force" in caplog.text


def test_the_train_lora_step_keeps_checkpoints_where_a_rerun_of_the_same_training_resumes(
    tiny_config, rendered, deepsynth_home, monkeypatch
):
    """ZenML deletes a failed step's outputs, so the step checkpoints under <home>/training-state."""
    from deepsynth.adapter_files import TRAINING_METRICS as METRICS_FILE
    from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer
    from deepsynth.training.fingerprints import resumable_state_dir
    from steps.train_lora import train_lora

    config = tiny_config(num_epochs=3)
    state_dir = resumable_state_dir(deepsynth_home, config, rendered.path)
    assert state_dir != resumable_state_dir(
        deepsynth_home, dataclasses.replace(config, learning_rate=2e-2), rendered.path
    )
    step, calls = DeepSynthLoRATrainer._step, []

    def step_then_sigterm(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(DeepSynthLoRATrainer, "_step", step_then_sigterm)
    with pytest.raises(TrainingInterrupted, match="stopped at step 2/6"):
        train_lora.entrypoint(rendered, config)
    assert [p.name for p in list_checkpoints(state_dir)] == ["checkpoint-00000002"]

    monkeypatch.setattr(DeepSynthLoRATrainer, "_step", step)
    adapter = train_lora.entrypoint(rendered, config)
    metrics = json.loads((adapter.path / METRICS_FILE).read_text())
    assert metrics["resumed_from_step"] == 2 and metrics["global_step"] == 6
    assert not state_dir.exists()  # a finished training leaves no state behind
