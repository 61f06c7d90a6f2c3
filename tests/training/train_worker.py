"""Run one training job in its own process (used by the kill/resume and data-parallel tests).

usage: python train_worker.py CONFIG_JSON DATASET_DIR RESULT_JSON [STEP_DELAY_S]
"""

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import torch  # noqa: E402

torch.set_num_threads(1)

from deepsynth.training.config import TrainerConfig  # noqa: E402
from deepsynth.training.multi_adapter import make_trainer  # noqa: E402


def main() -> None:
    config_path, dataset, result = sys.argv[1:4]
    delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    config = TrainerConfig.from_json(config_path)
    trainer = make_trainer(config)  # several adapters when the config has adapters or a sweep
    if delay:  # slow each step down so the parent can kill the process mid-run
        for name in ("_step", "_mixed_step"):
            step = getattr(trainer, name, None)
            if step is None:
                continue

            def slow_step(*args, _step=step, **kwargs):
                time.sleep(delay)
                return _step(*args, **kwargs)

            setattr(trainer, name, slow_step)
    calls = {"save_output": 0, "checkpoint_writes": 0}
    save_output = trainer._save_output

    def counted_save_output(*args, **kwargs):
        calls["save_output"] += 1
        return save_output(*args, **kwargs)

    trainer._save_output = counted_save_output
    import deepsynth.training.deepsynth_lora_trainer as trainer_module

    save_checkpoint = trainer_module.save_checkpoint

    def counted_save_checkpoint(*args, **kwargs):
        calls["checkpoint_writes"] += 1
        return save_checkpoint(*args, **kwargs)

    trainer_module.save_checkpoint = counted_save_checkpoint
    metrics, checkpoints = trainer.train(dataset)
    rank = int(os.environ.get("RANK", "0"))
    logged = None
    if os.environ.get("MLFLOW_STORE"):  # each rank logs into its own store: only rank 0 may write anything
        import mlflow

        mlflow.set_tracking_uri(f"sqlite:///{os.environ['MLFLOW_STORE']}/rank{rank}.db")
        with mlflow.start_run():
            from deepsynth.training.mlflow_logging import log_training_to_mlflow

            logged = log_training_to_mlflow(config, metrics)
    trained = {n: p.detach().clone().contiguous() for n, p in trainer.model.named_parameters() if p.requires_grad}
    from safetensors.torch import save_file

    save_file(trained, result.replace(".json", f".rank{rank}.safetensors"))
    with open(result.replace(".json", f".rank{rank}.json"), "w") as handle:
        json.dump(
            {"metrics": metrics, "checkpoints": checkpoints, "calls": calls, "logged": logged}, handle, default=str
        )


if __name__ == "__main__":
    main()
