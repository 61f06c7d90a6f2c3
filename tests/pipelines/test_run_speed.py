"""A run's fixed cost, continued: ZenML's warning origin without source reads, the collector paused during
start-up, and a no-change data run that still reports in full."""

from __future__ import annotations

import contextlib
import gc
import inspect
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def _inspect_origin() -> tuple[str, int]:
    """What ZenML's own ``_resolve_call_details`` returns (``inspect.stack()[3]``)."""
    frame = inspect.stack()[3]
    return inspect.getmodule(frame[0]).__name__, frame.lineno


def _log() -> tuple[tuple[str, int], tuple[str, int]]:
    from pipelines.zenml_speedups import _warning_origin

    return _warning_origin(), _inspect_origin()


def _public_warning_method():
    return _log()


def test_warning_origin_is_the_frame_inspect_names():
    line = sys._getframe().f_lineno + 1
    cheap, original = _public_warning_method()
    assert cheap == original == (__name__, line)


def test_zenml_warnings_use_the_cheap_origin():
    from zenml.utils.warnings.controller import WarningController
    from zenml.utils.warnings.registry import WarningCodes

    from pipelines.zenml_speedups import _warning_origin, cheap_warning_origin

    cheap_warning_origin()
    assert WarningController._resolve_call_details is _warning_origin
    controller = WarningController.create()
    controller.info(warning_code=WarningCodes.ZML002, message="docker settings unused")  # logs, does not raise


def test_collection_paused_restores_the_collector():
    from pipelines.zenml_speedups import collection_paused

    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
        with collection_paused():  # nested: stays paused, the outer block restores
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), collection_paused():
        raise ValueError
    assert gc.isenabled() and gc.get_freeze_count() == 0  # a test process is not one-shot: nothing frozen


@pytest.mark.parametrize("one_shot", [False, True])
def test_only_a_one_shot_process_freezes_its_start_up(one_shot):
    code = (
        "import gc\n"
        "from pipelines.zenml_speedups import collection_paused, one_shot_process\n"
        + ("one_shot_process()\n" if one_shot else "")
        + "with collection_paused():\n"
        "    import zenml\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ["True", str(one_shot)]


@pytest.mark.slow
def test_a_no_change_data_run_is_cached_and_summarized(zenml_client, make_docs, tmp_path, capsys):
    from deepsynth_cli import main
    from pipelines.stores import ZENML_DB, zenml_dir

    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in make_docs(5, words=120)))
    args = ["data", str(data), "--mode", "tiny", "--json"]
    assert main(args) == 0
    assert set(json.loads(capsys.readouterr().out)["steps"].values()) == {"completed"}
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["steps"] == {
        "ingest": "cached",
        "render_pages": "cached",
        "validate_dataset": "cached",
        "check_data_quality": "cached",  # it passed on this report before
    }
    assert second["validation_passed"] is True and second["reports"]["validation"]["file"]
    assert gc.isenabled()
    with contextlib.closing(sqlite3.connect(zenml_dir().joinpath(*ZENML_DB))) as db:
        # SQLite's default journal: with WAL, a killed run's store intermittently read as malformed (CI, stop 33)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
