"""Data-parallel training in several local processes, launched with torchrun (``torch.distributed.run``).

``launch_training(config, dataset, n)`` starts ``n`` ranks of this module on this machine, each
training on its shard of the data (gloo on CPU, NCCL with one GPU per rank), and returns rank 0's
metrics. Only rank 0 writes the adapter and checkpoints (see the trainer). A rank that dies makes
torchrun stop the others; a rank that hangs makes the others' collectives time out
(``distributed_timeout_s``); either way the launch fails with :class:`TrainingLaunchError`, and the
same call resumes from the last checkpoint when ``resume_from_checkpoint`` is ``latest``.

One rank, as torchrun runs it (THREADS: ``auto`` for the thread policy, or a fixed count)::

    python -m deepsynth.training.launch CONFIG_JSON DATASET_DIR RESULT_JSON THREADS
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from deepsynth.env import rank as launched_rank
from deepsynth.errors import ConfigError, DeepSynthError
from deepsynth.threads import threads_per_process
from deepsynth.training.config import TrainerConfig

logger = logging.getLogger(__name__)

#: Lines of the ranks' output quoted in a launch failure.
TAIL_LINES = 15
#: How a rank reports an expected failure (one line, see :func:`main`), and how torchrun reports a rank's exit.
RANK_ERROR = re.compile(r"^rank \d+: ")
TORCHRUN_EXIT = re.compile(r"failed \(exitcode: (-?\d+)\) local_rank: (\d+)")


class TrainingLaunchError(DeepSynthError):
    """A data-parallel training run ended with a failed (killed, crashed or timed-out) rank."""


def resolve_num_processes(config: TrainerConfig) -> int:
    """How many ranks ``config`` asks for: ``num_processes``, or one per visible GPU when it is 0.

    Raises:
        ConfigError: More CUDA ranks than visible GPUs.
    """
    import torch

    on_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    gpus = torch.cuda.device_count() if on_cuda else 0
    wanted = config.num_processes or max(1, gpus)
    if on_cuda and wanted > gpus:
        raise ConfigError(f"train.num_processes: {wanted} CUDA processes need as many GPUs; {gpus} visible")
    return wanted


def torchrun_command(
    config_path: Path, dataset: str, result: Path, num_processes: int, threads: str = "auto"
) -> list[str]:
    """The torchrun command line that runs ``num_processes`` ranks on this machine (free port, no restarts).

    torchrun's log folder is beside ``config_path`` (without one it makes a ``torchelastic_*`` folder in the
    temp dir and never removes it).
    """
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={num_processes}",
        "--max-restarts=0",
        f"--log-dir={Path(config_path).parent / 'torchrun-logs'}",
        "-m",
        "deepsynth.training.launch",
        str(config_path),
        dataset,
        str(result),
        threads,
    ]


class RankOutput:
    """What a failure message needs from the ranks' output: their one-line errors, exits, and the last lines."""

    def __init__(self) -> None:
        self.errors: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def add(self, line: str) -> None:
        """Take one line of output."""
        exited = TORCHRUN_EXIT.search(line)
        if exited:
            code = int(exited.group(1))
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            self.errors.append(f"local rank {exited.group(2)} {how}")
        (self.errors if RANK_ERROR.match(line) else self.tail).append(line.rstrip())

    def summary(self) -> str:
        """The ranks' errors and exits, or else the last lines of their output."""
        return "\n".join(self.errors or ["Last output of the ranks:", *self.tail])


def launch_training(config: TrainerConfig, dataset: str | os.PathLike, num_processes: int) -> dict[str, Any]:
    """Train ``config`` on ``dataset`` in ``num_processes`` local ranks; returns rank 0's metrics.

    The ranks' output is copied to this process's stderr, line by line. Each rank gets its share of
    this machine's cores as intra-op threads (:mod:`deepsynth.threads`).

    Raises:
        TrainingLaunchError: A rank failed; the message quotes the end of the ranks' output.
    """
    with tempfile.TemporaryDirectory(prefix="deepsynth-ranks-") as tmp:
        config_path, result = Path(tmp) / "config.json", Path(tmp) / "result.json"
        config_path.write_text(json.dumps(config.to_dict()))
        explicit = os.environ.get("OMP_NUM_THREADS", "").strip()
        threads = explicit if explicit.isdigit() and int(explicit) > 0 else "auto"
        # The ranks' start-up thread pool; with "auto" each rank then follows the policy (deepsynth.threads).
        env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_process(num_processes))}
        command = torchrun_command(config_path, str(dataset), result, num_processes, threads)
        logger.info("training in %d processes: %s", num_processes, " ".join(command))
        output = RankOutput()
        with subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as proc:
            for line in proc.stdout:  # ends when every rank and torchrun have exited
                sys.stderr.write(line)
                output.add(line)
        if proc.returncode != 0 or not result.is_file():
            where = config.state_dir or config.output_dir
            raise TrainingLaunchError(
                f"data-parallel training failed: torchrun with {num_processes} processes exited with code "
                f"{proc.returncode}; checkpoints (if any) are in {where}/checkpoints and the same command resumes "
                f"from the last one.\n{output.summary()}"
            )
        return json.loads(result.read_text())["metrics"]


def main(argv: list[str] | None = None) -> int:
    """Run one rank (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE); rank 0 writes the result."""
    from deepsynth.threads import apply_thread_policy
    from deepsynth.training.multi_adapter import make_trainer

    config_path, dataset, result, threads = argv if argv is not None else sys.argv[1:5]
    policy = apply_thread_policy(environ={} if threads == "auto" else {"OMP_NUM_THREADS": threads})
    rank = launched_rank()
    logger.info("rank %d: %d intra-op thread(s)", rank, policy.threads)
    try:
        trainer = make_trainer(TrainerConfig.from_json(config_path), on_step=policy.refresh)
        metrics, checkpoints = trainer.train(dataset)
    except DeepSynthError as exc:
        print(f"rank {rank}: {exc}", file=sys.stderr)
        return 1
    if metrics["rank"] == 0:
        partial = Path(f"{result}.partial")
        partial.write_text(json.dumps({"metrics": metrics, "checkpoints": checkpoints}, default=str))
        partial.replace(result)
    return 0


if __name__ == "__main__":
    from deepsynth.process_exit import skip_final_collection

    skip_final_collection()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
