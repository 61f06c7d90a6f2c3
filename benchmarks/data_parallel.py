"""Data-parallel training throughput: samples/s at 1 and 2 CPU processes, and at 1..N GPUs when present.

    python -m benchmarks.data_parallel [--docs 16] [--epochs 2] [--global-batch 4] [--gpus]

Every configuration trains the tiny profile through the train step's own launcher
(:func:`deepsynth.training.launch.launch_training`: torchrun, gloo on CPU, NCCL on GPUs) on the same
rendered data (ACLSum papers, one base-mode page each) with the same global batch, so the runs do
the same work; each rank gets its share of the cores (:mod:`deepsynth.threads`). Reported per
process count: the training loop's samples/s (rank 0, after model loading), the launch's wall
time, and both as ratios to one process measured in the same run. On CPU the ranks share the
machine's cores, so the ratio shows what splitting the same cores costs or gains; the GPU
figures (``--gpus``, every visible GPU, one rank each) show scaling. Writes
benchmarks/results/data_parallel.json (``--name`` to write elsewhere).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.common import write_result  # noqa: E402

COMMON = {
    "model_name": "tiny",
    "lora_rank": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.0,
    "learning_rate": 1e-3,
    "max_length": 512,
    "max_summary_tokens": 128,
    "progress_bar": False,
    "seed": 0,
}


def measure(dataset: Path, home: str, out: Path, processes: int, device: str, args, threads: int | None = None) -> dict:
    """One launch of ``processes`` ranks on ``device`` with the run's global batch; its figures.

    ``threads`` fixes each rank's intra-op threads (``OMP_NUM_THREADS``) instead of the thread policy.
    """
    from deepsynth.training.config import TrainerConfig
    from deepsynth.training.launch import launch_training

    config = TrainerConfig(
        **COMMON,
        device=device,
        deepsynth_home=home,
        output_dir=str(out),
        num_epochs=args.epochs,
        batch_size=args.global_batch // processes,
        num_processes=processes,
    )
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        start = time.perf_counter()
        metrics = launch_training(config, dataset, processes)
        wall = time.perf_counter() - start
    finally:
        os.environ.pop("OMP_NUM_THREADS", None)
    return {
        "processes": processes,
        "device": device,
        "threads": threads or "policy",
        "batch_per_process": config.batch_size,
        "samples_per_s": metrics["samples_per_second"],
        "tokens_per_s": metrics["tokens_per_second"],
        "train_loop_s": metrics["train_runtime_s"],
        "wall_s": wall,
        "steps": metrics["global_step"],
        "final_loss": metrics["final_loss"],
    }


def with_ratios(runs: list[dict]) -> list[dict]:
    """Each run with its samples/s and wall time as ratios to the one-process run."""
    one = runs[0]
    return [
        {
            **r,
            "speedup_samples_per_s": r["samples_per_s"] / one["samples_per_s"],
            "speedup_wall": one["wall_s"] / r["wall_s"],
        }
        for r in runs
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=16, help="training documents (one page each)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--global-batch", type=int, default=4, help="documents per optimizer step over all ranks")
    parser.add_argument("--cpu-processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--gpus", action="store_true", help="also 1..N GPUs (every visible one), one rank each")
    parser.add_argument("--name", default="data_parallel", help="result file name under benchmarks/results")
    args = parser.parse_args(argv)
    os.environ.pop("OMP_NUM_THREADS", None)  # the thread policy decides each rank's share

    import torch

    from benchmarks.train import build_dataset
    from deepsynth.models.loading import build_tiny_model, tiny_model_dir
    from deepsynth.threads import available_cores

    with tempfile.TemporaryDirectory(prefix="deepsynth-bench-dp-") as tmp:
        work = Path(tmp)
        home = str(work / "home")
        build_tiny_model(tiny_model_dir(home))  # built once here, so no timed run pays for it
        dataset = build_dataset(work / "data", args.docs)
        cpu = with_ratios([measure(dataset, home, work / f"cpu{n}", n, "cpu", args) for n in args.cpu_processes])
        # torch's default without the policy: one thread per core, whatever else runs on them
        default = measure(dataset, home, work / "cpu-default", 1, "cpu", args, threads=available_cores())
        gpus = torch.cuda.device_count() if args.gpus else 0
        gpu = (
            with_ratios([measure(dataset, home, work / f"gpu{n}", n, "cuda", args) for n in range(1, gpus + 1)])
            if gpus
            else []
        )
    default["policy_speedup_samples_per_s"] = cpu[0]["samples_per_s"] / default["samples_per_s"]
    print(
        f"{'device':7} {'procs':>5} {'threads':>7} {'batch/proc':>10} {'samples/s':>10} {'ratio':>6} {'wall s':>7} "
        f"{'ratio':>6}"
    )
    for r in cpu + gpu:
        print(
            f"{r['device']:7} {r['processes']:5d} {'policy':>7} {r['batch_per_process']:10d} "
            f"{r['samples_per_s']:10.2f} "
            f"{r['speedup_samples_per_s']:6.2f} {r['wall_s']:7.1f} {r['speedup_wall']:6.2f}"
        )
    print(
        f"{available_cores()} core(s) shared by the CPU ranks; global batch {args.global_batch}; load average "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    print(
        f"thread policy vs torch's default ({default['threads']} threads, 1 process, {default['samples_per_s']:.2f} "
        f"samples/s): {default['policy_speedup_samples_per_s']:.2f}x"
    )
    path = write_result(
        args.name,
        {
            "docs": args.docs,
            "epochs": args.epochs,
            "global_batch": args.global_batch,
            "cores": available_cores(),
            "model": "tiny profile (UnlimitedOcr, hidden 64, 2 layers, 4 experts, 128-px SAM)",
            "data": "ACLSum train papers rendered in base mode, 1 page each",
            "cpu": cpu,
            "gpu": gpu,
            "cpu_default_threads": default,
            "load_average_end": os.getloadavg()[0],
            "gpus_visible": torch.cuda.device_count(),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
