"""GPU training throughput: DeepSynth's trainer against ``transformers.Trainer`` + PEFT, and where a step's time goes.

    python -m benchmarks.gpu_train [--batch-sizes 8 16 32] [--largest] [--docs 128]
    python -m benchmarks.gpu_train --device cpu --model tiny --docs 6 --batch-sizes 2 --summary-tokens 32  # smoke

Same model (full-size DeepSeek-OCR v1 with random bf16 weights, saved once as safetensors), data
(one-page base-mode documents with 256-token summaries), LoRA config (r16 on the decoder's
projections), bf16 and gradient checkpointing for both sides; each run in its own process, two
epochs. Figures are steady state: the second epoch, with DeepSynth's feature cache warm. For each
batch size: tokens/s, MFU against a bf16 matmul peak measured in the same process, peak VRAM, and
the ratio to the baseline; QLoRA-4's step time against LoRA's; with ``--largest`` the batch size is
doubled until it no longer fits. A ``torch.profiler`` trace of three steady-state DeepSynth steps
gives the step-time breakdown: wall time per step, device-busy share, host synchronisations and the
top operators by device and host time. Writes benchmarks/results/gpu_train.json. Without CUDA (and
without ``--device cpu``) it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LORA = {"lora_rank": 16, "lora_alpha": 32, "lora_dropout": 0.05}
SUMMARY_TOKENS = 256
PROFILED_STEPS = 3
SYNC_OPS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "aten::_local_scalar_dense")


def trainer_config(args, out: str, batch_size: int, **overrides):
    """The run's TrainerConfig: bf16, gradient checkpointing, two epochs."""
    from deepsynth.training.config import TrainerConfig

    cpu = args.device == "cpu"
    values = dict(
        model_name=args.checkpoint,
        output_dir=out,
        device=args.device,
        seed=0,
        num_epochs=2,
        model_dtype="float32" if cpu else "bfloat16",
        mixed_precision="no" if cpu else "bf16",
        gradient_checkpointing=not cpu,
        batch_size=batch_size,
        max_length=1024,
        max_summary_tokens=args.summary_tokens,
        learning_rate=1e-4,
        progress_bar=False,
        deepsynth_home=args.home,
    )
    values.update(LORA)
    values.update(overrides)
    return TrainerConfig(**values)


def _device(args):
    import torch

    return torch.device("cuda", 0) if args.device == "cuda" else torch.device("cpu")


def _peak_memory_gb(device) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def run_deepsynth(args, batch_size: int, variant: str) -> dict:
    """DeepSynth's trainer; steady state = its second epoch."""
    import torch

    from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer
    from deepsynth.training.metrics import measure_peak_flops

    device = _device(args)
    peak = measure_peak_flops(device)
    overrides = {"use_qlora": True, "qlora_bits": 4} if variant == "qlora4" else {}
    config = trainer_config(args, args.out, batch_size, **overrides)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    metrics, _ = DeepSynthLoRATrainer(config).train(args.dataset)
    steady = metrics["epochs_detail"][-1]
    return {
        "tokens_per_s": steady["tokens"] / steady["seconds"],
        "step_s": steady["seconds"] / steady["steps"],
        "mfu": steady["model_flops"] / steady["seconds"] / peak,
        "measured_peak_tflops": peak / 1e12,
        "peak_vram_gb": _peak_memory_gb(device),
        "steady_epoch": steady,
        "final_loss": metrics["final_loss"],
    }


def run_baseline(args, batch_size: int) -> dict:
    """``transformers.Trainer`` + PEFT on the same model, data and LoRA config; steady state = epoch two."""
    import torch
    from peft import get_peft_model
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from benchmarks.baseline import trainer_collate
    from deepsynth.data.rendered import RenderedDataset
    from deepsynth.models.loading import load_base_model
    from deepsynth.training.lora_config import build_lora_config
    from deepsynth.training.metrics import decoder_training_flops, measure_peak_flops

    device = _device(args)
    peak = measure_peak_flops(device)
    config = trainer_config(args, args.out, batch_size)
    model, tokenizer, _ = load_base_model(config.model_name, dtype=getattr(torch, config.model_dtype), home=args.home)
    model.requires_grad_(False)
    torch.manual_seed(config.seed)
    model = get_peft_model(model, build_lora_config(config))
    sam = model.get_base_model().config.vision_config.sam_config.image_size
    docs = RenderedDataset(args.dataset).documents(split="train")

    collate = trainer_collate(tokenizer, sam, config, getattr(torch, config.model_dtype))

    sample = collate(docs)
    tokens, targets = int(sample["attention_mask"].sum()), int((sample["labels"][:, 1:] != -100).sum())
    body, head = decoder_training_flops(model)

    class EpochClock(TrainerCallback):
        def __init__(self):
            self.seconds = []

        def on_epoch_begin(self, *_, **__):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            self.start = time.perf_counter()

        def on_epoch_end(self, *_, **__):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            self.seconds.append(time.perf_counter() - self.start)

    clock = EpochClock()
    training_args = TrainingArguments(
        output_dir=args.out,
        per_device_train_batch_size=batch_size,
        num_train_epochs=2,
        learning_rate=1e-4,
        lr_scheduler_type="linear",
        save_strategy="no",
        report_to=[],
        use_cpu=device.type == "cpu",
        bf16=device.type == "cuda",
        gradient_checkpointing=device.type == "cuda",
        gradient_checkpointing_kwargs={"use_reentrant": False},
        dataloader_num_workers=0,
        remove_unused_columns=False,
        logging_steps=10**6,
        seed=config.seed,
        disable_tqdm=True,
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer = Trainer(model=model, args=training_args, train_dataset=docs, data_collator=collate, callbacks=[clock])
    trainer.train()
    seconds = clock.seconds[-1]
    steps = -(-len(docs) // batch_size)
    return {
        "tokens_per_s": tokens / seconds,
        "step_s": seconds / steps,
        "mfu": (body * tokens + head * targets) / seconds / peak,
        "measured_peak_tflops": peak / 1e12,
        "peak_vram_gb": _peak_memory_gb(device),
    }


def run_profile(args, batch_size: int) -> dict:
    """Three steady-state DeepSynth steps under ``torch.profiler``: where a step's time goes."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile, schedule

    from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer

    device = _device(args)
    config = trainer_config(args, args.out, batch_size)
    steps_per_epoch = -(-args.docs // batch_size)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    wait = max(0, steps_per_epoch - 1)  # the first epoch fills the feature cache
    marks: list[float] = []  # wall clock after each optimizer step

    with profile(activities=activities, schedule=schedule(wait=wait, warmup=1, active=PROFILED_STEPS)) as prof:

        def on_step(step: int) -> None:
            marks.append(time.perf_counter())
            prof.step()

        DeepSynthLoRATrainer(config, on_step=on_step).train(args.dataset)
    # Active steps are wait + 2 ... wait + 1 + PROFILED_STEPS; step s ends at marks[s - 1].
    if len(marks) < wait + PROFILED_STEPS + 1:
        return {"error": f"{len(marks)} steps: too few to profile {PROFILED_STEPS} steady-state steps"}
    wall = (marks[wait + PROFILED_STEPS] - marks[wait]) / PROFILED_STEPS
    events = prof.key_averages()
    on_cuda = device.type == "cuda"
    kernel_us = sum(e.self_device_time_total for e in events if on_cuda and e.device_type == DeviceType.CUDA)
    return {
        "batch_size": batch_size,
        "step_wall_s": wall,
        "device_busy_share": kernel_us / 1e6 / PROFILED_STEPS / wall if on_cuda else None,
        "host_syncs_per_step": {e.key: e.count / PROFILED_STEPS for e in events if e.key in SYNC_OPS},
        "top_device_ops": _top(events, "self_device_time_total") if on_cuda else [],
        "top_host_ops": _top(events, "self_cpu_time_total"),
    }


def _top(events, attr: str, n: int = 15) -> list[dict]:
    """The ``n`` operators with the most ``attr`` time, per profiled step."""
    ranked = sorted(events, key=lambda e: -getattr(e, attr))[:n]
    return [
        {
            "op": e.key,
            "ms_per_step": getattr(e, attr) / 1e3 / PROFILED_STEPS,
            "calls_per_step": e.count / PROFILED_STEPS,
        }
        for e in ranked
    ]


def prepare(args, work: Path) -> None:
    """The checkpoint (random full-size weights, or the tiny profile) and the rendered documents."""
    from benchmarks.gpu_memory import build_dataset, save_random_checkpoint

    args.home = str(work / "home")
    if args.model == "tiny":
        args.checkpoint = "tiny"
    else:
        args.checkpoint = str(save_random_checkpoint(work / "deepseek-ocr-random"))
    args.dataset = str(build_dataset(work / "data", args.docs))


def child(args) -> dict:
    """One measurement in this process."""
    import torch

    kind, _, batch = args.child.partition(":")
    try:
        if kind == "baseline":
            return run_baseline(args, int(batch))
        if kind == "profile":
            return run_profile(args, int(batch))
        return run_deepsynth(args, int(batch), kind)
    except torch.OutOfMemoryError as exc:
        return {"out_of_memory": str(exc).splitlines()[0]}


def spawn(args, name: str, work: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.gpu_train",
        "--child",
        name,
        "--device",
        args.device,
        "--model",
        args.model,
        "--docs",
        str(args.docs),
        "--summary-tokens",
        str(args.summary_tokens),
        "--checkpoint",
        args.checkpoint,
        "--dataset",
        args.dataset,
        "--home",
        args.home,
        "--out",
        str(work / name.replace(":", "-")),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--largest", action="store_true", help="also double the batch size until it no longer fits")
    parser.add_argument("--docs", type=int, default=128, help="one-page documents (two epochs over them)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--model", choices=["full", "tiny"], default="full", help="tiny: a CPU smoke run")
    parser.add_argument(
        "--summary-tokens", type=int, default=SUMMARY_TOKENS, help="summary tokens trained per document (smoke: fewer)"
    )
    for hidden in ("--child", "--checkpoint", "--dataset", "--home", "--out"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    if args.child:
        print("RESULT " + json.dumps(child(args)))
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        print("benchmarks.gpu_train: no CUDA device here; nothing measured (run it on a GPU machine)")
        return
    from benchmarks.common import write_result

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="deepsynth-gpu-train-") as tmp:
        work = Path(tmp)
        prepare(args, work)
        sizes = list(args.batch_sizes)
        for batch in sizes:
            for kind in ("lora", "baseline"):
                results[f"{kind}:{batch}"] = spawn(args, f"{kind}:{batch}", work)
                print(f"{kind} batch {batch}: {results[f'{kind}:{batch}']}", file=sys.stderr, flush=True)
        batch = max(sizes)
        while args.largest and "tokens_per_s" in results.get(f"lora:{batch}", {}) and batch * 2 <= args.docs:
            batch *= 2
            results[f"lora:{batch}"] = spawn(args, f"lora:{batch}", work)
        reference = 16 if 16 in sizes else sizes[0]
        results[f"qlora4:{reference}"] = spawn(args, f"qlora4:{reference}", work)
        profile_result = spawn(args, f"profile:{reference}", work)

    rows = []
    for name, r in results.items():
        kind, _, batch = name.partition(":")
        base = results.get(f"baseline:{batch}", {})
        ratio = (
            r["tokens_per_s"] / base["tokens_per_s"]
            if kind == "lora" and "tokens_per_s" in base and "tokens_per_s" in r
            else None
        )
        rows.append((name, r, ratio))
        if "tokens_per_s" in r:
            vram = f"{r['peak_vram_gb']:.1f}" if r.get("peak_vram_gb") is not None else "-"
            print(
                f"{name:14} {r['tokens_per_s']:10.0f} tok/s  MFU {r['mfu']:6.1%}  step {r['step_s']:.3f} s  "
                f"VRAM {vram} GB" + (f"  {ratio:.2f}x baseline" if ratio else "")
            )
        else:
            print(f"{name:14} {r}")
    lora, qlora = results.get(f"lora:{reference}", {}), results.get(f"qlora4:{reference}", {})
    qlora_ratio = qlora["step_s"] / lora["step_s"] if "step_s" in qlora and "step_s" in lora else None
    best_mfu = max((r["mfu"] for name, r, _ in rows if "mfu" in r and name.startswith("lora:")), default=None)
    ratio16 = next((ratio for name, _, ratio in rows if name == "lora:16"), None)
    goals = {
        "speedup_vs_baseline_at_16": {"goal": 4.0, "value": ratio16},
        "best_mfu": {"goal": 0.25, "value": best_mfu},
        "qlora4_step_over_lora": {"goal": 1.5, "value": qlora_ratio},
    }
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    path = write_result(
        "gpu_train" if args.model == "full" else "gpu_train_smoke",
        {
            "device": device,
            "model": args.model,
            "docs": args.docs,
            "summary_tokens": args.summary_tokens,
            "lora": LORA,
            "results": results,
            "goals": goals,
            "profile": profile_result,
        },
    )
    print(
        json.dumps({"goals": goals, "profile": {k: v for k, v in profile_result.items() if not k.startswith("top_")}})
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
