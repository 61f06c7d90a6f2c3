"""Training speed on the tiny profile: LoRA vs QLoRA-4/8, and DeepSynth's trainer vs a plain baseline.

    python -m benchmarks.train [--docs 24] [--epochs 3] [--batch-size 4]

Every measurement runs in its own fresh process (so peak RSS is its own) on the same rendered
data (ACLSum papers rendered in base mode, their human summaries as targets) and the same tiny
model. Reported: samples/s, tokens/s and peak RSS for LoRA, QLoRA-4 and QLoRA-8 (DeepSynth's
trainer, feature cache on), and the 3-epoch wall time of DeepSynth's trainer against a plain
``transformers.Trainer`` + PEFT run that re-encodes every page image at every step. Efficiency the
way the field reports it: tokens/s, model-FLOPs utilisation against the peak a plain matmul
sustains in the same process (same threads), the vision encoder's share of training time, and
what the feature cache saves (DeepSynth's trainer with the cache off). Writes
benchmarks/results/train.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.common import peak_rss_mb, write_result  # noqa: E402

VARIANTS = {
    "lora": {},
    "qlora4": {"use_qlora": True, "qlora_bits": 4, "qlora_type": "nf4", "qlora_double_quant": True},
    "qlora8": {"use_qlora": True, "qlora_bits": 8},
    "lora_no_cache": {"feature_cache": False},
}
COMMON = {
    "model_name": "tiny",
    "lora_rank": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "learning_rate": 1e-3,
    "max_length": 512,
    "max_summary_tokens": 128,
    "progress_bar": False,
    "device": "cpu",
    "seed": 0,
}


def build_dataset(path: Path, docs: int) -> Path:
    """Render ``docs`` ACLSum training papers (one base-mode page each) into a rendered dataset."""
    from deepsynth.data.config import IngestConfig
    from deepsynth.data.ingest import ingest
    from deepsynth.data.rendered import RenderedDatasetWriter
    from deepsynth.rendering.config import RenderSettings
    from deepsynth.rendering.renderer import render_documents

    rows = [r for r in ingest(IngestConfig(source="aclsum")).rows() if r["split"] == "train" and r["summary"]][:docs]
    settings = RenderSettings(modes=["base"], max_pages=1, workers=1)
    with RenderedDatasetWriter(path, settings={"benchmark": "train", "modes": ["base"]}) as writer:
        for row in render_documents(rows, settings):
            writer.write(row)
    return path


def run_deepsynth(dataset: str, variant: str, epochs: int, batch_size: int, out: str) -> dict:
    """DeepSynth's trainer (feature cache on) in this process."""
    import torch

    from deepsynth.training.config import TrainerConfig
    from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer
    from deepsynth.training.metrics import measure_peak_flops

    peak = measure_peak_flops(torch.device("cpu"))
    config = TrainerConfig(
        **COMMON, **VARIANTS[variant], num_epochs=epochs, batch_size=batch_size, output_dir=out, peak_tflops=peak / 1e12
    )
    start = time.perf_counter()
    metrics, _ = DeepSynthLoRATrainer(config).train(dataset)
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "train_loop_s": metrics["train_runtime_s"],
        "samples_per_s": metrics["samples_per_second"],
        "tokens_per_s": metrics["tokens_per_second"],
        "final_loss": metrics["final_loss"],
        "trainable_params": metrics["trainable_params"],
        "steps": metrics["global_step"],
        "measured_peak_gflops": peak / 1e9,
        "model_gflops_per_s": metrics["model_tflops_per_second"] * 1e3,
        "mfu": metrics["mfu"],
        "encoder_s": metrics["encoder_seconds"],
        "encoder_share": metrics["encoder_seconds"] / metrics["train_runtime_s"],
    }


def run_baseline(dataset: str, epochs: int, batch_size: int, out: str) -> dict:
    """Plain ``transformers.Trainer`` + PEFT: pages decoded, preprocessed and encoded at every step."""
    import torch
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments

    from benchmarks.baseline import trainer_collate
    from deepsynth.data.rendered import RenderedDataset
    from deepsynth.models.loading import load_base_model
    from deepsynth.training.config import TrainerConfig
    from deepsynth.training.lora_config import build_lora_config

    config = TrainerConfig(**COMMON, num_epochs=epochs, batch_size=batch_size, output_dir=out)
    model, tokenizer, _ = load_base_model("tiny")
    model.requires_grad_(False)
    torch.manual_seed(config.seed)
    model = get_peft_model(model, build_lora_config(config))
    sam = model.get_base_model().config.vision_config.sam_config.image_size
    docs = RenderedDataset(dataset).documents(split="train")

    class Pages(torch.utils.data.Dataset):
        def __len__(self):
            return len(docs)

        def __getitem__(self, i):
            return docs[i]

    collate = trainer_collate(tokenizer, sam, config)

    args = TrainingArguments(
        output_dir=out,
        per_device_train_batch_size=batch_size,
        num_train_epochs=epochs,
        learning_rate=config.learning_rate,
        lr_scheduler_type="linear",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        logging_steps=10**6,
        seed=config.seed,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=Pages(), data_collator=collate)
    start = time.perf_counter()
    result = trainer.train()
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "train_loop_s": result.metrics["train_runtime"],
        "samples_per_s": result.metrics["train_samples_per_second"],
        "final_loss": result.training_loss,
        "steps": result.global_step,
    }


def _child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.child == "baseline":
        result = run_baseline(args.dataset, args.epochs, args.batch_size, args.out)
    else:
        result = run_deepsynth(args.dataset, args.child, args.epochs, args.batch_size, args.out)
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result))


def _spawn(name: str, dataset: Path, args, work: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.train",
        "--child",
        name,
        "--dataset",
        str(dataset),
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--threads",
        str(args.threads),
        "--out",
        str(work / name),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "DEEPSYNTH_HOME": str(args.home)})
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (2 shared cores here)")
    parser.add_argument("--home", default=None, help="DeepSynth home holding the tiny model (default: a temp dir)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)

    with tempfile.TemporaryDirectory(prefix="deepsynth-bench-") as tmp:
        work = Path(tmp)
        args.home = args.home or str(work / "home")
        dataset = build_dataset(work / "data", args.docs)
        from deepsynth.models.loading import build_tiny_model, tiny_model_dir

        build_tiny_model(tiny_model_dir(args.home))  # built once here, so no timed run pays for it
        results = {name: _spawn(name, dataset, args, work) for name in [*VARIANTS, "baseline"]}
    speedup = results["baseline"]["wall_s"] / results["lora"]["wall_s"]
    loop_speedup = results["baseline"]["train_loop_s"] / results["lora"]["train_loop_s"]
    cache_saving = results["lora_no_cache"]["train_loop_s"] / results["lora"]["train_loop_s"]
    print(
        f"{'run':14} {'samples/s':>10} {'tokens/s':>10} {'MFU':>7} {'encoder':>8} {'peak RSS MiB':>13} {'wall s':>8} "
        f"{'loss':>7}"
    )
    for name, r in results.items():
        tokens = f"{r['tokens_per_s']:10.1f}" if "tokens_per_s" in r else f"{'-':>10}"
        mfu = f"{r['mfu']:7.2%}" if r.get("mfu") is not None else f"{'-':>7}"
        share = f"{r['encoder_share']:8.1%}" if "encoder_share" in r else f"{'-':>8}"
        print(
            f"{name:14} {r['samples_per_s']:10.2f} {tokens} {mfu} {share} {r['peak_rss_mb']:13.0f} {r['wall_s']:8.1f} "
            f"{r['final_loss']:7.3f}"
        )
    print(
        f"MFU against a measured fp32 matmul peak of {results['lora']['measured_peak_gflops']:.1f} GFLOP/s "
        f"({args.threads} thread(s)); 'encoder' = the vision encoder's share of the training loop"
    )
    print(f"feature cache: training loop {cache_saving:.2f}x faster than DeepSynth's trainer with the cache off")
    print(
        f"{args.epochs}-epoch wall time, DeepSynth (feature cache) vs transformers.Trainer + PEFT: "
        f"{speedup:.2f}x (training loops only: {loop_speedup:.2f}x)"
    )
    path = write_result(
        "train",
        {
            "docs": args.docs,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "torch_threads": args.threads,
            "model": "tiny profile (UnlimitedOcr, hidden 64, 2 layers, 4 experts, 128-px SAM)",
            "data": "ACLSum train papers rendered in base mode, 1 page each",
            "results": results,
            "speedup_vs_baseline_wall": speedup,
            "speedup_vs_baseline_train_loop": loop_speedup,
            "feature_cache_saving_train_loop": cache_saving,
            "goal": ">= 2x the baseline",
            "goal_met": speedup >= 2.0 and not math.isnan(speedup),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
