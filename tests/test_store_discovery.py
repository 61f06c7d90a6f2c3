"""The home is found from anywhere: ``$DEEPSYNTH_HOME``, else the nearest ``.deepsynth/`` up the directory tree,
else the user-level default; a "no store" error names every place looked.

Commands run as real processes in other directories, without ``DEEPSYNTH_HOME`` or ``ZENML_CONFIG_PATH``
and with ``XDG_DATA_HOME`` in a temp folder (the user's real default is never touched).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepsynth.paths import HOME_DIR, deepsynth_home, find_home

ROOT = Path(__file__).parents[1]


def clean_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEEPSYNTH_HOME", "ZENML_CONFIG_PATH") and not k.startswith("MLFLOW_")
    }
    return {**env, "XDG_DATA_HOME": str(tmp_path / "xdg"), **extra}


def deepsynth(cwd: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deepsynth_cli", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def unrelated(tmp_path):
    """A directory with no ``.deepsynth/`` in it or above it."""
    start = tmp_path / "unrelated" / "deeper"
    start.mkdir(parents=True)
    above = [d for d in start.parents if (d / HOME_DIR).is_dir()]
    if above:
        pytest.skip(f"{above[0] / HOME_DIR} exists above the temp folder: no directory here is unrelated to a home")
    return start


def test_deepsynth_home_wins_over_a_home_up_the_tree(tmp_path, monkeypatch):
    (tmp_path / "project" / HOME_DIR).mkdir(parents=True)
    (tmp_path / "project" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "project" / "sub")
    monkeypatch.setenv("DEEPSYNTH_HOME", str(tmp_path / "elsewhere"))
    choice = find_home()
    assert choice.path == tmp_path / "elsewhere" and choice.reason == "DEEPSYNTH_HOME"
    assert "from $DEEPSYNTH_HOME" in choice.describe()
    monkeypatch.delenv("DEEPSYNTH_HOME", raising=False)
    assert deepsynth_home() == tmp_path / "project" / HOME_DIR
    assert deepsynth_home(tmp_path / "given") == tmp_path / "given"  # an explicit home wins over everything


def test_the_nearest_home_up_the_tree_is_found(tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPSYNTH_HOME", raising=False)
    for home in (tmp_path / "project" / HOME_DIR, tmp_path / "project" / "inner" / HOME_DIR):
        home.mkdir(parents=True)
    start = tmp_path / "project" / "inner" / "a" / "b"
    start.mkdir(parents=True)
    choice = find_home(start)
    assert choice.path == tmp_path / "project" / "inner" / HOME_DIR and choice.reason == "found"
    assert choice.searched == (start, start.parent, start.parent.parent)
    assert find_home(tmp_path / "project").path == tmp_path / "project" / HOME_DIR
    assert f"the nearest {HOME_DIR}/ at or above {start}" in choice.describe()


def test_with_no_home_up_the_tree_the_user_level_default_is_used(unrelated, tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPSYNTH_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    choice = find_home(unrelated)
    assert choice.path == tmp_path / "xdg" / "deepsynth" and choice.reason == "default"
    assert choice.searched == (unrelated, *unrelated.parents)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert find_home(unrelated).path == Path.home() / ".local" / "share" / "deepsynth"


def test_a_reading_command_with_no_home_names_every_place_it_looked(unrelated, tmp_path):
    proc = deepsynth(unrelated, clean_environment(tmp_path), "models", "list", "--json")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert "$DEEPSYNTH_HOME (unset)" in error
    assert f"{HOME_DIR}/ in {', '.join(str(d) for d in (unrelated, *unrelated.parents))};" in error
    assert f"then the default {tmp_path / 'xdg' / 'deepsynth'}" in error
    assert not (unrelated / HOME_DIR).exists()  # a reading command never makes a home where it runs


@pytest.mark.slow
def test_a_home_is_found_from_a_subdirectory_and_deepsynth_home_still_wins(tmp_path):
    project = tmp_path / "project"
    home = project / HOME_DIR
    setup = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "support" / "set_up_store.py")],
        cwd=ROOT,
        env={**os.environ, "DEEPSYNTH_HOME": str(home), "ZENML_CONFIG_PATH": str(home / "zenml")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert setup.returncode == 0, setup.stderr[-3000:]
    sub = project / "papers" / "2026"
    sub.mkdir(parents=True)
    found = deepsynth(sub, clean_environment(tmp_path), "models", "list", "--json")
    assert found.returncode == 0, found.stderr[-2000:]
    assert json.loads(found.stdout) == []
    other = tmp_path / "other-home"
    chosen = deepsynth(sub, clean_environment(tmp_path, DEEPSYNTH_HOME=str(other)), "models", "list", "--json")
    assert chosen.returncode == 2
    error = json.loads(chosen.stdout)["error"]
    assert f"no DeepSynth store in {other / 'zenml'}" in error and f"$DEEPSYNTH_HOME ({other})" in error


def test_dash_v_says_which_home_and_why(tmp_path):
    (tmp_path / "project" / HOME_DIR).mkdir(parents=True)
    sub = tmp_path / "project" / "sub"
    sub.mkdir()
    proc = deepsynth(sub, clean_environment(tmp_path), "models", "list", "-v")
    assert (
        f"DeepSynth home: {tmp_path / 'project' / HOME_DIR} (the nearest .deepsynth/ at or above {sub})" in proc.stderr
    )
    proc = deepsynth(sub, clean_environment(tmp_path, DEEPSYNTH_HOME=str(tmp_path / "h")), "models", "list", "-v")
    assert f"DeepSynth home: {tmp_path / 'h'} (from $DEEPSYNTH_HOME)" in proc.stderr
