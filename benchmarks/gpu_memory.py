"""Peak GPU memory and step time of full-size DeepSeek-OCR for full FT, LoRA and QLoRA, against their goals.

    python -m benchmarks.gpu_memory [--steps 6]

Builds the full DeepSeek-OCR v1 architecture (3.3B parameters) with random weights, saves it once
as a local safetensors checkpoint (so QLoRA variants load through ``from_pretrained`` with
bitsandbytes, like real weights), then trains each variant in its own process at batch 1 on a
base-mode page (1024 px, 273 image positions) with a 256-token summary, gradient checkpointing
and bf16: full fine-tuning of the decoder, LoRA r16, QLoRA 8-bit, QLoRA 4-bit, QLoRA 4-bit + a
trainable BERT text encoder. Reports peak allocated VRAM and mean step time; writes
benchmarks/results/gpu_memory.json. Without CUDA it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VARIANTS = {
    "full_ft": {"use_lora": False, "optimizer": "adamw_8bit"},
    "lora_r16": {"lora_rank": 16, "lora_alpha": 32},
    "qlora_8bit": {"lora_rank": 16, "lora_alpha": 32, "use_qlora": True, "qlora_bits": 8},
    "qlora_4bit": {"lora_rank": 16, "lora_alpha": 32, "use_qlora": True, "qlora_bits": 4},
    "qlora_4bit_text_encoder": {
        "lora_rank": 16,
        "lora_alpha": 32,
        "use_qlora": True,
        "qlora_bits": 4,
        "use_text_encoder": True,
        "text_encoder_type": "bert",
        "text_encoder_trainable": True,
        "use_text_projection": True,
    },
}
GOALS_GB = {"qlora_4bit": 5.0, "qlora_8bit": 6.5, "lora_r16": 7.0}


def build_full_size(device: str = "meta"):
    """DeepSeek-OCR v1 at full size on ``device`` (``meta`` allocates nothing)."""
    import torch
    from transformers import UnlimitedOcrForConditionalGeneration

    from deepsynth.models.architecture import deepseek_ocr_config

    with torch.device(device):
        return UnlimitedOcrForConditionalGeneration(deepseek_ocr_config())


def save_random_checkpoint(path: Path) -> Path:
    """Random bf16 weights for the full architecture, saved with safetensors plus the tokenizer."""
    import torch

    from deepsynth.models.tokenizer import load_tokenizer

    torch.manual_seed(0)
    model = build_full_size("cuda").to(torch.bfloat16)
    model.save_pretrained(path, safe_serialization=True)
    load_tokenizer().save_pretrained(path)
    del model
    torch.cuda.empty_cache()
    return path


def build_dataset(path: Path, steps: int) -> Path:
    """``steps`` one-page base-mode documents with 256-token summaries."""
    from PIL import Image, ImageDraw

    from deepsynth.data.rendered import RenderedDatasetWriter

    words = ("the model reads the page and writes a short faithful summary of what it says " * 40).split()
    with RenderedDatasetWriter(path, settings={"benchmark": "gpu_memory"}) as writer:
        for i in range(steps):
            img = Image.new("RGB", (1024, 1024), "white")
            ImageDraw.Draw(img).multiline_text(
                (40, 40), "\n".join(" ".join(words[j : j + 12]) for j in range(0, 480, 12)), fill="black"
            )
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            summary = " ".join(words[:256])
            writer.write(
                {
                    "id": f"d{i}",
                    "split": "train",
                    "mode": "base",
                    "text": summary,
                    "summary": summary,
                    "instruction": None,
                    "pages": [buf.getvalue()],
                    "page_width": 1024,
                    "page_height": 1024,
                    "chars_total": 1,
                    "chars_rendered": 1,
                    "truncated": False,
                    "missing_glyphs": [],
                    "doc_hash": str(i),
                }
            )
    return path


def measure(variant: str, checkpoint: str, dataset: str, steps: int, out: str) -> dict:
    """Train one variant for ``steps`` steps in this process; peak VRAM and step time."""
    import torch

    from deepsynth.training.config import TrainerConfig
    from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer

    config = TrainerConfig(
        model_name=checkpoint,
        output_dir=out,
        device="cuda",
        model_dtype="bfloat16",
        mixed_precision="bf16",
        gradient_checkpointing=True,
        batch_size=1,
        num_epochs=1,
        max_steps=steps,
        max_length=1024,
        max_summary_tokens=256,
        progress_bar=False,
        learning_rate=1e-4,
        **VARIANTS[variant],
    )
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    metrics, _ = DeepSynthLoRATrainer(config).train(dataset)
    return {
        "peak_vram_gb": torch.cuda.max_memory_allocated() / 2**30,
        "peak_reserved_gb": torch.cuda.max_memory_reserved() / 2**30,
        "step_time_s": metrics["train_runtime_s"] / max(1, metrics["global_step"]),
        "wall_s": time.perf_counter() - start,
        "trainable_params": metrics["trainable_params"],
        "tokens_per_s": metrics["tokens_per_second"],
        "mfu": metrics["mfu"],
        "final_loss": metrics["final_loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("benchmarks.gpu_memory: no CUDA device here; nothing measured (run it on a GPU machine)")
        return
    if args.child:
        print("RESULT " + json.dumps(measure(args.child, args.checkpoint, args.dataset, args.steps, args.out)))
        return
    from benchmarks.common import write_result

    results = {}
    with tempfile.TemporaryDirectory(prefix="deepsynth-gpu-") as tmp:
        work = Path(tmp)
        checkpoint = save_random_checkpoint(work / "deepseek-ocr-random")
        dataset = build_dataset(work / "data", args.steps + 1)
        for variant in args.variants:
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.gpu_memory",
                "--child",
                variant,
                "--checkpoint",
                str(checkpoint),
                "--dataset",
                str(dataset),
                "--out",
                str(work / variant),
                "--steps",
                str(args.steps),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                results[variant] = {"error": proc.stderr[-1500:]}
                print(f"{variant}: failed\n{proc.stderr[-1500:]}")
                continue
            results[variant] = json.loads(
                next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:]
            )
    print(f"{'variant':26} {'peak VRAM GB':>12} {'goal':>6} {'step s':>8} {'trainable':>12}")
    for name, r in results.items():
        if "error" in r:
            continue
        print(
            f"{name:26} {r['peak_vram_gb']:12.2f} {GOALS_GB.get(name, float('nan')):6.1f} {r['step_time_s']:8.3f} "
            f"{r['trainable_params']:12,}"
        )
    goals = {
        k: {"limit_gb": v, "met": results.get(k, {}).get("peak_vram_gb", float("inf")) <= v}
        for k, v in GOALS_GB.items()
    }
    path = write_result(
        "gpu_memory",
        {
            "gpu": torch.cuda.get_device_name(0),
            "batch_size": 1,
            "mode": "base",
            "summary_tokens": 256,
            "gradient_checkpointing": True,
            "dtype": "bf16",
            "steps": args.steps,
            "results": results,
            "goals": goals,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
