"""Throughput and model-FLOPs-utilisation (MFU) estimates, and a description of the machine."""

from __future__ import annotations

import os
import platform
import resource
import sys

import torch
from torch import nn

from deepsynth.models.vision import ocr_core, unwrap_model

# Dense bf16 peak TFLOP/s by GPU name fragment (vendor datasheets, no sparsity).
GPU_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0, "V100": 125.0}
# CPU estimate: AVX2 fp32, 2 FMA units x 8 lanes x 2 flops per cycle at ~2.5 GHz per thread.
CPU_FLOPS_PER_THREAD = 2.5e9 * 32


def decoder_flops_per_token(model: nn.Module) -> float:
    """Training FLOPs per token of the decoder: 6 x its active parameters (routed experts count top-k of n).

    Embedding lookups are free; the LM head counts. The frozen encoder is excluded: with the feature
    cache it does not run after the first epoch.
    """
    core = ocr_core(model)
    text = core.config.text_config
    active = 0.0
    for name, p in core.language_model.named_parameters():
        if "embed_tokens" in name:
            continue
        n = p.numel()
        if ".experts." in name and "shared" not in name:
            n *= text.num_experts_per_tok / text.n_routed_experts
        active += n
    active += unwrap_model(model).lm_head.weight.numel()
    return 6.0 * active


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
    return torch.get_num_threads() * CPU_FLOPS_PER_THREAD, f"CPU estimate ({torch.get_num_threads()} threads, fp32 AVX2)"


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
