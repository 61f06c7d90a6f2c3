"""Fixtures of the Studio tests (the Studio process itself: studio_support.py)."""

from __future__ import annotations

import pytest
from studio_support import Studio, make_project


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A Studio without a token (module-scoped: starting one takes a few seconds)."""
    started = Studio(make_project(tmp_path_factory.mktemp("studio-project")), env={"DEEPSYNTH_API_TOKEN": ""})
    yield started
    started.stop()
