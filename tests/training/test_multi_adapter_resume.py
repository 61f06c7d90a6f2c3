"""A killed multi-adapter run resumes every adapter to what an uninterrupted run gives (sequential and mixed)."""

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

pytestmark = pytest.mark.slow
WORKER = Path(__file__).with_name("train_worker.py")
ADAPTERS = [
    {"name": "news", "lora_rank": 4, "seed": 1},
    {"name": "legal", "seed": 7, "data": {"column": "id", "in": ["doc-0", "doc-2"]}},
]


def launch(config, dataset, result, delay=0.0):
    """train_worker.py on ``config`` in its own process (``delay``: seconds added to every step)."""
    path = Path(result).with_suffix(".config.json")
    path.write_text(json.dumps(config.to_dict()))
    command = [sys.executable, str(WORKER), str(path), str(dataset), str(result), str(delay)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.parametrize(
    "mode, dropout, killed_in",
    [("sequential", 0.1, "legal"), ("mixed", 0.0, "news")],  # sequential: killed while training the second adapter
)
def test_killed_multi_adapter_run_resumes_every_adapter(tiny_config, rendered, tmp_path, mode, dropout, killed_in):
    def config(name):
        return tiny_config(
            output_dir=str(tmp_path / name),
            state_dir=str(tmp_path / f"{name}-state"),
            adapters=ADAPTERS,
            adapters_mode=mode,
            num_epochs=3,
            lora_dropout=dropout,
            save_steps=1,
            resume_from_checkpoint="latest",
        )

    ref = launch(config("ref"), rendered.path, tmp_path / "ref.json")
    assert ref.wait(timeout=300) == 0, ref.stderr.read().decode()[-2000:]

    victim = launch(config("killed"), rendered.path, tmp_path / "victim.json", delay=0.4)
    checkpoints = tmp_path / "killed-state" / killed_in
    deadline = time.time() + 240
    while len(list_checkpoints(checkpoints)) < 2:
        assert victim.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    assert not (tmp_path / "killed" / "adapters.json").exists()

    resumed = launch(config("killed"), rendered.path, tmp_path / "resumed.json")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()[-2000:]
    for name in ("news", "legal"):
        expected = load_file(str(tmp_path / "ref" / name / "adapter_model.safetensors"))
        got = load_file(str(tmp_path / "killed" / name / "adapter_model.safetensors"))
        assert set(expected) == set(got) and got
        for key in expected:
            assert torch.equal(got[key], expected[key]), (name, key)
    assert (tmp_path / "killed" / "adapters.json").is_file()
