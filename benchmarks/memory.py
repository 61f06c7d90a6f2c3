"""Weight memory of full-size DeepSeek-OCR by part and dtype, for full FT, LoRA, QLoRA-8 and QLoRA-4 (CPU).

    python -m benchmarks.memory

Builds the full DeepSeek-OCR v1 architecture (3.3B parameters, random bf16 weights) on the CPU for
each variant and sets it up the way training does on a GPU: the same ``quantize_decoder`` (fused
experts included) and the same peft LoRA config. Then it counts the bytes every weight, buffer and
quantization constant actually stores, by part (experts, vision, other decoder, LM head, LoRA) and
dtype — what the model occupies on the device before activations and optimizer state. Writes
benchmarks/results/memory.json. No GPU needed; about 2 minutes and 8 GB of RAM on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from peft import get_peft_model  # noqa: E402
from transformers import UnlimitedOcrForConditionalGeneration  # noqa: E402

from benchmarks.common import write_result  # noqa: E402
from deepsynth.models.architecture import deepseek_ocr_config  # noqa: E402
from deepsynth.models.quantization import QuantizationSpec, quantize_decoder, weight_bytes  # noqa: E402
from deepsynth.models.vision import ocr_core  # noqa: E402
from deepsynth.training.config import TrainerConfig  # noqa: E402
from deepsynth.training.lora_config import build_lora_config  # noqa: E402

VARIANTS = {
    "full_ft": {"use_lora": False},
    "lora_r16": {"lora_rank": 16, "lora_alpha": 32},
    "qlora_8bit": {"lora_rank": 16, "lora_alpha": 32, "use_qlora": True, "qlora_bits": 8},
    "qlora_4bit": {"lora_rank": 16, "lora_alpha": 32, "use_qlora": True, "qlora_bits": 4},
}
PARTS = ("experts", "vision", "decoder", "lm_head", "lora")
GB = 1e9


def random_full_size_model() -> torch.nn.Module:
    """The full architecture in bf16 with N(0, 0.02) weights (allocated without the slow default init)."""
    with torch.device("meta"):
        model = UnlimitedOcrForConditionalGeneration(deepseek_ocr_config())
    model = model.to_empty(device="cpu").to(torch.bfloat16)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.normal_(0.0, 0.02, generator=generator)
    return model


def measure(variant: str) -> dict:
    """Set up one variant as training would and count its stored bytes by part and dtype."""
    config = TrainerConfig(model_name="memory-benchmark", model_dtype="bfloat16", lora_dropout=0.0, **VARIANTS[variant])
    model = random_full_size_model()
    model.requires_grad_(False)
    if config.use_qlora:
        spec = QuantizationSpec(config.qlora_bits, config.qlora_type, config.qlora_double_quant, torch.bfloat16)
        quantize_decoder(model, ocr_core(model).language_model, spec, torch.device("cpu"))
    if config.use_lora:
        model = get_peft_model(model, build_lora_config(config))
    else:
        ocr_core(model).language_model.requires_grad_(True)
        model.lm_head.requires_grad_(True)
    by_part: dict[str, dict[str, float]] = {}
    for (part, dtype), n in sorted(weight_bytes(model).items()):
        by_part.setdefault(part, {})[dtype] = round(n / GB, 4)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(sum(d.values()) for d in by_part.values())
    frozen_fp32 = sum(d.get("float32", 0.0) for part, d in by_part.items() if part != "lora")
    return {
        "gb_by_part_and_dtype": by_part,
        "total_gb": round(total, 3),
        "trainable_params": trainable,
        "frozen_float32_gb": round(frozen_fp32, 4),
        "adamw_state_gb_fp32": round(8 * trainable / GB, 3),
    }


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
