import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]  # benchmarks/ is a top-level package, not installed
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def test_gpu_memory_benchmark_builds_full_size_deepseek_ocr_on_meta():
    from benchmarks.gpu_memory import build_full_size

    model = build_full_size("meta")
    assert all(p.device.type == "meta" for p in model.parameters())
    total = sum(p.numel() for p in model.parameters())
    decoder = sum(p.numel() for p in model.model.language_model.parameters())
    assert 3.2e9 < total < 3.5e9 and 2.7e9 < decoder < 2.9e9
    assert model.model.language_model.layers[1].mlp.experts.gate_up_proj.shape == (64, 2 * 896, 1280)


@pytest.mark.parametrize("script", ["gpu_memory", "gpu_train"])
def test_gpu_benchmarks_skip_cleanly_without_cuda(script):
    if torch.cuda.is_available():
        return
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{script}"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0 and "no CUDA device" in proc.stdout


@pytest.mark.slow
def test_gpu_train_benchmark_runs_end_to_end_on_the_cpu_with_the_tiny_profile():
    """The GPU session has minutes: every path of the script (both sides, QLoRA, profiler) runs here first."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_train", "--device", "cpu", "--model", "tiny",
                           "--docs", "8", "--batch-sizes", "2"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((ROOT / "benchmarks" / "results" / "gpu_train_smoke.json").read_text())
    for run in ("lora:2", "baseline:2", "qlora4:2"):
        assert result["results"][run]["tokens_per_s"] > 0, result["results"][run]
    assert 0 < result["results"]["lora:2"]["mfu"] < 1
    profile = result["profile"]
    assert profile["step_wall_s"] > 0 and profile["top_host_ops"]
