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
from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer  # noqa: E402


def main() -> None:
    config_path, dataset, result = sys.argv[1:4]
    delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    config = TrainerConfig.from_json(config_path)
    trainer = DeepSynthLoRATrainer(config)
    if delay:  # slow each step down so the parent can kill the process mid-run
        step = trainer._step

        def slow_step(*args, **kwargs):
            time.sleep(delay)
            return step(*args, **kwargs)

        trainer._step = slow_step
    metrics, checkpoints = trainer.train(dataset)
    rank = int(os.environ.get("RANK", "0"))
    trained = {n: p.detach().clone().contiguous() for n, p in trainer.model.named_parameters() if p.requires_grad}
    from safetensors.torch import save_file

    save_file(trained, result.replace(".json", f".rank{rank}.safetensors"))
    with open(result.replace(".json", f".rank{rank}.json"), "w") as handle:
        json.dump({"metrics": metrics, "checkpoints": checkpoints}, handle, default=str)


if __name__ == "__main__":
    main()
