"""Throughput and model-FLOPs-utilisation (MFU) estimates, and a description of the machine."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time

import torch
from torch import nn

from deepsynth.models.quantization import logical_numel
from deepsynth.models.vision import ocr_core, unwrap_model

# Dense bf16 peak TFLOP/s by GPU name fragment (vendor datasheets, no sparsity).
GPU_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0, "V100": 125.0}
# CPU estimate: AVX2 fp32, 2 FMA units x 8 lanes x 2 flops per cycle at ~2.5 GHz per thread.
CPU_FLOPS_PER_THREAD = 2.5e9 * 32


def _training_flops(p: nn.Parameter, share: float = 1.0) -> float:
    """FLOPs per position of one weight: forward 2 and input gradient 2, plus weight gradient 2 if trained."""
    return (6.0 if p.requires_grad else 4.0) * logical_numel(p) * share


def decoder_training_flops(model: nn.Module) -> tuple[float, float]:
    """Training FLOPs of the decoder: ``(per input position, per predicted position)``.

    The body (attention, MLP, experts, adapters) runs at every position; the LM head only at the
    positions that carry a label (the fused loss never computes the other logits). A frozen weight
    costs forward + input gradient (4 per parameter), a trained one also its weight gradient (6).
    Routed experts count top-k of n; embedding lookups are free. The frozen vision encoder is
    excluded: with the feature cache it does not run after the first epoch.
    """
    core = ocr_core(model)
    text = core.config.text_config
    body = 0.0
    for name, p in core.language_model.named_parameters():
        if "embed_tokens" in name:
            continue
        routed = ".experts." in name and "shared" not in name
        body += _training_flops(p, text.num_experts_per_tok / text.n_routed_experts if routed else 1.0)
    head = sum(_training_flops(p) for p in unwrap_model(model).lm_head.parameters())
    return body, head


def peak_flops(device: torch.device, override_tflops: float | None = None) -> tuple[float, str]:
    """``(peak FLOP/s, how it was obtained)`` for the MFU estimate."""
    if override_tflops:
        return override_tflops * 1e12, "configured"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in GPU_PEAK_TFLOPS.items():
            if key in name:
                return tflops * 1e12, f"datasheet {key} bf16"
        return 0.0, f"unknown GPU {name}"
    return (
        torch.get_num_threads() * CPU_FLOPS_PER_THREAD,
        f"CPU estimate ({torch.get_num_threads()} threads, fp32 AVX2)",
    )


def measure_peak_flops(device: torch.device, seconds: float = 1.0, size: int | None = None) -> float:
    """Sustained matmul FLOP/s of this device (fp32 on CPU, bf16 on CUDA): a measured peak for MFU.

    Datasheet peaks are rarely reached; MFU against what a plain matmul sustains on the same
    device and thread count says how much of the machine the training loop uses.
    """
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    size = size or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)  # warm-up: kernels picked, memory touched
    runs, start = 0, time.perf_counter()
    while True:
        torch.mm(a, b)
        runs += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return 2.0 * size**3 * runs / elapsed


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


def system_info(device: torch.device) -> dict[str, str]:
    """Python, torch, transformers, peft versions and the device, as strings (for MLflow params/tags)."""
    import peft
    import transformers

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "cpu_count": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
        "device": device.type,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
