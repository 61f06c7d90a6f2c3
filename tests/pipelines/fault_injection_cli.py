"""Run the real ``deepsynth`` CLI in this process after installing one injected fault.

usage: python fault_injection_cli.py FAULT RECORD_FILE deepsynth-args...

FAULT:
  none           no fault
  render_crash   render_pages writes all its shards, then the process "loses its disk" (OSError)
  mlflow_outage  MLflow answers 503 TEMPORARILY_UNAVAILABLE to the training step's logging and to every
                 registration call; each retry's backoff is recorded instead of slept (seconds per retry)
  sigterm        the process receives SIGTERM during the second optimizer step of training
  sigkill        render_pages writes all its shards, then the process is killed with SIGKILL
  hold_render    render_pages records its run, waits (at most 300 s) for RECORD_FILE.release to
                 exist, then fails
Each fault appends one JSON line per hit to RECORD_FILE.
"""

import json
import sys


def record(path, **data):
    with open(path, "a") as handle:
        handle.write(json.dumps(data) + "\n")


def main() -> int:
    fault, record_file, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if fault == "render_crash":
        from deepsynth.data import generator as render_module

        real = render_module.render_dataset

        def crash_after_writing(rows, settings, out_dir, *rest, **kwargs):
            real(rows, settings, out_dir, *rest, **kwargs)
            record(record_file, output_dir=str(out_dir))
            raise OSError("injected fault: lost the disk after writing the shards")

        render_module.render_dataset = crash_after_writing
    elif fault == "mlflow_outage":
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

        import steps.export_and_register as export_step

        def unavailable(*args, **kwargs):
            record(record_file, call="register_package")
            raise MlflowException(
                "injected fault: MLflow answered 503 Service Unavailable", error_code=TEMPORARILY_UNAVAILABLE
            )

        export_step.register_package = unavailable
        import steps.train_lora as train_step

        def logging_unavailable(*args, **kwargs):
            record(record_file, call="log_training_to_mlflow")
            raise MlflowException(
                "injected fault: MLflow answered 503 Service Unavailable", error_code=TEMPORARILY_UNAVAILABLE
            )

        train_step.log_training_to_mlflow = logging_unavailable
        from deepsynth import retry

        def backoff(seconds):
            record(record_file, backoff_s=seconds)

        retry.retry_transient.__kwdefaults__["sleep"] = backoff  # the steps call it without sleep=
    elif fault == "sigterm":
        import os
        import signal

        from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer

        real_step, calls = DeepSynthLoRATrainer._step, []

        def step_then_sigterm(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                record(record_file, signal="SIGTERM", step=2)
                os.kill(os.getpid(), signal.SIGTERM)
            return real_step(self, *args, **kwargs)

        DeepSynthLoRATrainer._step = step_then_sigterm
    elif fault in ("sigkill", "hold_render"):
        import os
        import signal
        import time
        from pathlib import Path

        from zenml import get_step_context

        from deepsynth.data import generator as render_module

        real = render_module.render_dataset

        def interrupted(rows, settings, out_dir, *rest, **kwargs):
            run = get_step_context().pipeline_run
            if fault == "sigkill":
                real(rows, settings, out_dir, *rest, **kwargs)
                record(record_file, run_name=run.name, run_id=str(run.id), output_dir=str(out_dir))
                os.kill(os.getpid(), signal.SIGKILL)
            record(record_file, run_name=run.name, run_id=str(run.id))
            release, deadline = Path(f"{record_file}.release"), time.monotonic() + 300
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            raise OSError(f"injected fault: render_pages of {run.name} failed")

        render_module.render_dataset = interrupted
    elif fault != "none":
        raise SystemExit(f"unknown fault {fault}")
    from deepsynth_cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
