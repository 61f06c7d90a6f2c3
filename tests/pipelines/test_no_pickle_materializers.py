"""Security: every output of every step in steps/ gets a non-pickle materializer (none falls back to pickle)."""

from __future__ import annotations

import importlib
import pkgutil
import typing
from pathlib import Path

PICKLE_MATERIALIZERS = {"CloudpickleMaterializer", "PickleMaterializer"}
STEPS_DIR = Path(__file__).parents[2] / "steps"


def all_steps():
    from zenml.steps import BaseStep

    import steps

    found = {}
    for info in pkgutil.iter_modules([str(STEPS_DIR)]):
        module = importlib.import_module(f"steps.{info.name}")
        for value in vars(module).values():
            if isinstance(value, BaseStep) and value.__module__ == module.__name__:
                found[value.name] = value
    assert steps  # the package import registers the project's materializers
    return found


def test_every_step_output_has_a_non_pickle_materializer():
    from zenml.materializers.materializer_registry import materializer_registry

    found = all_steps()
    # every step module's step is found (a new step module is walked automatically)
    assert {
        "ingest",
        "render_pages",
        "validate_dataset",
        "check_data_quality",
        "train_lora",
        "evaluate_adapter",
        "export_and_register",
    } <= set(found)
    checked = {}
    for name, step in sorted(found.items()):
        outputs = step.entrypoint_definition.outputs
        assert outputs, f"step {name} has no annotated outputs"
        for output, signature in outputs.items():
            configured = step.configuration.outputs.get(output)
            sources = getattr(configured, "materializer_source", None) if configured else None
            if sources:  # an explicitly configured materializer
                chosen = [str(s.attribute) for s in sources]
            else:
                annotation = signature.resolved_annotation
                origin = typing.get_origin(annotation) or annotation
                chosen = [materializer_registry[origin].__name__]
            checked[f"{name}.{output}"] = chosen
            assert not set(chosen) & PICKLE_MATERIALIZERS, f"{name} output {output!r} would be pickled: {chosen}"
    # the custom types map to the project's own materializers
    assert checked["train_lora.adapter"] == ["TrainedAdapterMaterializer"]
    assert checked["render_pages.rendered"] == ["RenderedDatasetMaterializer"]
    assert checked["export_and_register.export"] == ["ExportResultMaterializer"]
    assert checked["evaluate_adapter.evaluation"] == ["EvaluationResultMaterializer"]
    assert len(checked) >= 10


def test_an_unknown_type_would_be_caught_by_the_walk():
    """The check is meaningful: a type without a materializer does resolve to the pickle fallback."""
    from zenml.materializers.materializer_registry import materializer_registry

    class Unregistered:
        pass

    assert materializer_registry[Unregistered].__name__ in PICKLE_MATERIALIZERS
