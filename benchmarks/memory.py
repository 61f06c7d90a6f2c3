"""Weight memory of full-size DeepSeek-OCR by part and dtype, for full FT, LoRA, QLoRA-8 and QLoRA-4 (CPU).

    python -m benchmarks.memory

Builds the full DeepSeek-OCR v1 architecture (3.3B parameters, random bf16 weights) on the CPU for
each variant and sets it up the way training does on a GPU: the same ``quantize_decoder`` (fused
experts included) and the same peft LoRA config, through ``deepsynth.models.memory_estimate`` (whose
``estimate`` computes the same table on the meta device for the Studio). Then it counts the bytes every
weight, buffer and quantization constant actually stores, by part (experts, vision, other decoder, LM head, LoRA) and
dtype — what the model occupies on the device before activations and optimizer state. Writes
benchmarks/results/memory.json. No GPU needed; about 2 minutes and 8 GB of RAM on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from benchmarks.common import write_result  # noqa: E402
from deepsynth.models.architecture import DEEPSEEK_OCR  # noqa: E402
from deepsynth.models.memory_estimate import PARTS, make_trainable, measured_bytes, random_model, table  # noqa: E402
from deepsynth.models.quantization import QuantizationSpec, quantize_decoder  # noqa: E402
from deepsynth.models.vision import ocr_core  # noqa: E402
from deepsynth.training.config import TrainerConfig  # noqa: E402
from deepsynth.training.lora_config import build_lora_config  # noqa: E402

VARIANTS = {
    "full_ft": {"use_lora": False},
    "lora_r16": {"lora_rank": 16, "lora_alpha": 32},
    "qlora_8bit": {"lora_rank": 16, "lora_alpha": 32, "use_qlora": True, "qlora_bits": 8},
    "qlora_4bit": {"lora_rank": 16, "lora_alpha": 32, "use_qlora": True, "qlora_bits": 4},
}


def measure(variant: str) -> dict:
    """Set up one variant as training would and count its stored bytes by part and dtype.

    The setup is :mod:`deepsynth.models.memory_estimate`'s, the one the Studio's estimate computes on the
    meta device; here the weights are real and the decoder really quantized.
    """
    config = TrainerConfig(model_name="memory-benchmark", model_dtype="bfloat16", lora_dropout=0.0, **VARIANTS[variant])
    model = random_model(DEEPSEEK_OCR, torch.bfloat16)
    if config.use_qlora:
        spec = QuantizationSpec(config.qlora_bits, config.qlora_type, config.qlora_double_quant, torch.bfloat16)
        quantize_decoder(model, ocr_core(model).language_model, spec, torch.device("cpu"))
    model = make_trainable(model, build_lora_config(config) if config.use_lora else None)
    return table(measured_bytes(model), sum(p.numel() for p in model.parameters() if p.requires_grad))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    results = {}
    for variant in args.variants:
        start = time.perf_counter()
        results[variant] = measure(variant)
        results[variant]["setup_s"] = round(time.perf_counter() - start, 1)
        print(f"{variant}: {results[variant]['total_gb']:.2f} GB ({results[variant]['setup_s']} s)", flush=True)
    print(f"\n{'variant':12}" + "".join(f"{p:>10}" for p in PARTS) + f"{'total GB':>10}{'fp32 frozen':>12}")
    for name, r in results.items():
        parts = r["gb_by_part_and_dtype"]
        print(
            f"{name:12}"
            + "".join(f"{sum(parts.get(p, {}).values()):10.3f}" for p in PARTS)
            + f"{r['total_gb']:10.3f}{r['frozen_float32_gb']:12.4f}"
        )
    path = write_result("memory", {"model": "DeepSeek-OCR v1 architecture, random bf16 weights", "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
