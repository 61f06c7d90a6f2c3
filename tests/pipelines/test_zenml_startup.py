"""A run's fixed cost: only the active stack's ZenML integrations are activated, the package list is cheap, the
MLflow tracker's clean-up imports no framework, and a current store is opened without a migration run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
UNUSED = (
    "zenml.integrations.huggingface.materializers",
    "zenml.integrations.pytorch.materializers",
    "zenml.integrations.sklearn.materializers",
    "transformers",
    "torch",  # the MLflow tracker's clean-up after the tracked validate step, through mlflow.pytorch
    "sklearn",  # and through mlflow.sklearn
)


def _python(code: str, out: Path) -> dict:
    """Run ``code`` in a fresh interpreter (the session's stores, inherited); return the JSON it writes to ``out``."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_limited_activation_imports_only_the_named_integrations(tmp_path):
    out = tmp_path / "modules.json"
    found = _python(
        "import json, sys\n"
        "from zenml.integrations.registry import integration_registry\n"
        "from pipelines.zenml_speedups import limit_integration_activation\n"
        "limit_integration_activation({'mlflow'})\n"
        "integration_registry.activate_integrations()\n"
        f"mods = {list(UNUSED) + ['zenml.integrations.mlflow.services']!r}\n"
        f"open({str(out)!r}, 'w').write(json.dumps([m for m in mods if m in sys.modules]))\n",
        out,
    )
    assert found == ["zenml.integrations.mlflow.services"]


def test_limit_is_replaceable_and_restorable():
    from zenml.integrations.registry import IntegrationRegistry

    from pipelines.zenml_speedups import limit_integration_activation, restore_integration_activation

    before = IntegrationRegistry.activate_integrations
    limit_integration_activation({"mlflow"})
    limit_integration_activation({"kubernetes"})
    assert "kubernetes" in IntegrationRegistry.activate_integrations.__doc__
    restore_integration_activation()
    try:
        assert IntegrationRegistry.__dict__["activate_integrations"].__doc__.startswith("Best-effort eager activation")
    finally:
        IntegrationRegistry.activate_integrations = before


def test_local_stack_integrations_are_mlflow_only(zenml_client):
    from pipelines.zenml_speedups import stack_integrations

    # "built-in": ZenML's own flavors (the local orchestrator and artifact store), no integration to activate
    assert stack_integrations(zenml_client.active_stack_model) == {"built-in", "mlflow"}


@pytest.mark.parametrize("patched", [True, False])
def test_a_store_at_the_installed_release_opens_without_a_migration_run(zenml_client, tmp_path, patched):
    out = tmp_path / "migrations.json"
    calls = _python(
        "import json\n"
        "import pipelines.zenml_speedups as speedups\n"
        f"speedups._MIGRATIONS_PATCHED = {not patched}  # True: as if applied, so it is not\n"
        "from zenml.zen_stores.sql_zen_store import SqlZenStore\n"
        "calls, migrate = [], SqlZenStore.migrate_database\n"
        "SqlZenStore.migrate_database = lambda self: calls.append(1) or migrate(self)\n"
        "from pipelines.local_stack import ensure_stack\n"
        "ensure_stack()\n"
        f"open({str(out)!r}, 'w').write(json.dumps(len(calls)))\n",
        out,
    )
    assert calls == (0 if patched else 1)


def test_only_a_database_at_the_installed_release_counts_as_migrated(tmp_path):
    import zenml
    from sqlalchemy import create_engine, text

    from pipelines.zenml_speedups import at_installed_release

    engine = create_engine(f"sqlite:///{tmp_path / 'zenml.db'}")
    assert not at_installed_release(engine)  # a new database: no alembic_version table
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('0.97.0')"))
    assert not at_installed_release(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": zenml.__version__})
    assert at_installed_release(engine)


def test_installed_packages_match_the_installed_versions():
    from importlib.metadata import version

    from pipelines.zenml_speedups import installed_packages

    packages = dict(line.split("==") for line in installed_packages())
    for name in ("zenml", "mlflow", "pydantic", "deepsynth-pipelines"):
        assert packages[name] == version(name)
    assert list(packages) == sorted(packages)


@pytest.mark.slow
def test_a_data_run_imports_no_unused_integration_and_still_tracks(zenml_client, make_docs, tmp_path):
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in make_docs(6, words=120)))
    out = tmp_path / "result.json"
    result = _python(
        "import json, sys, contextlib, io\n"
        "from deepsynth_cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as printed:\n"
        f"    code = main(['data', {str(data)!r}, '--mode', 'tiny', '--json'])\n"
        "summary = json.loads(printed.getvalue()[printed.getvalue().index('{'):])\n"
        f"mods = [m for m in {list(UNUSED)!r} if m in sys.modules]\n"
        f"open({str(out)!r}, 'w').write(json.dumps({{'code': code, 'run_id': summary['run_id'], 'modules': mods}}))\n",
        out,
    )
    assert result["code"] == 0 and result["modules"] == []
    run = zenml_client.zen_store.get_run(result["run_id"], include_python_packages=True)
    assert "\nzenml==" in run.client_environment["python_packages"]  # the dashboard's package list is still recorded

    import mlflow

    mlflow.set_tracking_uri(zenml_client.active_stack.experiment_tracker.get_tracking_uri())
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert any(r.data.metrics.get("data_ingested") == 6 for r in runs)


def test_the_trackers_clean_up_turns_off_only_autologging_that_could_be_on(tmp_path):
    out = tmp_path / "autolog.json"
    found = _python(
        "import json, sys\n"
        "from zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker import MLFlowExperimentTracker\n"
        "from mlflow.utils.autologging_utils import autologging_is_disabled\n"
        "from pipelines.zenml_speedups import disable_only_imported_autologging\n"
        "disable_only_imported_autologging()\n"
        "MLFlowExperimentTracker.disable_autologging(None)\n"
        "untouched = [m for m in ('torch', 'sklearn', 'mlflow.pytorch', 'mlflow.sklearn') if m in sys.modules]\n"
        "import mlflow.sklearn\n"
        "mlflow.sklearn.autolog()\n"
        "on = not autologging_is_disabled('sklearn')\n"
        "MLFlowExperimentTracker.disable_autologging(None)\n"
        "result = {'untouched': untouched, 'on': on, 'off_after': autologging_is_disabled('sklearn')}\n"
        f"open({str(out)!r}, 'w').write(json.dumps(result))\n",
        out,
    )
    assert found == {"untouched": [], "on": True, "off_after": True}


def frozen_at_exit(tmp_path, code: str) -> tuple[subprocess.CompletedProcess, bool]:
    """Run ``code`` in a new process whose first exit handler records whether the heap was frozen by then."""
    out = tmp_path / "exit.json"
    probe = (
        "import atexit, gc, json\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(gc.get_freeze_count() > 0)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe + code], cwd=ROOT, capture_output=True, text=True, check=False)
    return proc, json.loads(out.read_text())


def test_exit_handlers_still_run_after_the_heap_is_frozen(tmp_path):
    proc, frozen = frozen_at_exit(
        tmp_path,
        "from deepsynth.process_exit import skip_final_collection\n"
        "skip_final_collection(); skip_final_collection()\n"
        "print('done')\n",
    )
    assert proc.returncode == 0 and proc.stdout == "done\n", proc.stderr
    assert frozen is True  # the earlier handler ran, after the freeze


def test_every_command_of_the_console_script_skips_the_final_collection(tmp_path):
    proc, frozen = frozen_at_exit(
        tmp_path,
        "import sys\n"
        "sys.argv = ['deepsynth', 'config', 'keys', 'train']\n"
        "from deepsynth_cli.app import entry_point\n"
        "entry_point()\n",
    )
    assert proc.returncode == 0 and "learning_rate" in proc.stdout, proc.stderr
    assert frozen is True  # frozen before the handler registered first ran
