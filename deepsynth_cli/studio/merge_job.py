"""A Studio merge job: merge registered versions, evaluate the result on the held-out split, register it.

``python -m deepsynth_cli.studio.merge_job JSON`` (run by the job queue) prints one JSON document. The
merge is :func:`deepsynth.merge.merge_adapters` (each source verified; the result a normal export package).
The evaluation is the pipeline's: :func:`deepsynth.evaluation.scoring.evaluate` on the held-out split of the
validated dataset of the run that trained the first source, with the config's ``evaluate`` section. The
package is registered (:func:`deepsynth.registry.register_package`) with its metrics and its parents as tags
(``merge.parent.N``: ``models:/NAME/VERSION``, ``merge.method``, ``merge.weights``, ``merge.density``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from deepsynth.errors import ConfigError


def held_out_documents(source: dict[str, Any], split: str, mode: str | None, limit: int) -> list:
    """The evaluation documents of the run that trained ``source`` (a version as :func:`registry.show` gives it)."""
    from zenml.client import Client

    from pipelines.outcome import step_output

    run_id = source["tags"].get("zenml_pipeline_run_id")
    if not run_id:
        raise ConfigError(f"{source['name']}/{source['version']}: no zenml_pipeline_run_id tag: no held-out split")
    artifact = step_output(Client().get_pipeline_run(run_id), "validate_dataset", "valid")
    if artifact is None:
        raise ConfigError(f"run {run_id}: no validated dataset to evaluate the merge on")
    documents = artifact.load().documents(split=split, mode=mode)[:limit]
    if not documents:
        raise ConfigError(f"evaluate.split: no documents in split {split!r} of run {run_id}")
    return documents


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Merge, evaluate and register as ``spec`` says (sources, weights, method, density, out, config, name)."""
    from deepsynth import registry
    from deepsynth.evaluation.scoring import evaluate
    from deepsynth.inference.loading import load_adapter_model
    from deepsynth.merge import merge_adapters
    from deepsynth_cli.models import point_mlflow_at_registry
    from pipelines.config_loading import load_run_config

    sources = [f"models:/{s}" for s in spec["sources"]]
    point_mlflow_at_registry(*sources)
    parents = [registry.show(s) for s in spec["sources"]]
    cfg = load_run_config(spec["config"], check=False).evaluate
    result = merge_adapters(sources, spec["weights"], spec["out"], method=spec["method"], density=spec["density"])
    out = Path(result.output_dir)
    mode = json.loads((out / "trainer_config.json").read_text()).get("mode")
    documents = held_out_documents(parents[0], cfg.split, mode, cfg.max_documents)
    evaluation = evaluate(
        load_adapter_model(out), documents, generation=cfg.generation, k=cfg.lead_k, include_base=cfg.include_base
    )
    tags = {f"merge.parent.{i + 1}": f"models:/{p['name']}/{p['version']}" for i, p in enumerate(parents)}
    tags |= {
        "merge.method": spec["method"],
        "merge.weights": json.dumps(spec["weights"]),
        "merge.density": json.dumps(spec["density"]),
        "dataset_hash": parents[0]["tags"].get("dataset_hash", ""),
    }
    registered = registry.register_package(out, spec["name"], tags=tags, metrics=evaluation.adapter_metrics)
    return {
        "registration": registered,
        "evaluation": evaluation.systems,
        "documents": len(documents),
        "parents": list(tags.values())[: len(parents)],
        "export": result.to_dict(),
    }


def main(spec_json: str) -> int:
    """Run the job; stdout holds only its JSON result (libraries that print go to stderr meanwhile)."""
    from deepsynth_cli.app import report_failure

    result_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        result = run(json.loads(spec_json))
    except ConfigError as exc:
        return report_failure(str(exc), exc.exit_code, exc)
    finally:
        sys.stdout.flush()
        os.dup2(result_fd, 1)
    print(json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    from deepsynth.process_exit import skip_final_collection

    skip_final_collection()
    sys.exit(main(sys.argv[1]))
