"""Fixtures for validation tests: small real rendered datasets with real PNG pages."""

from __future__ import annotations

import itertools

import pytest
from support.rendered import make_row, write_dataset


@pytest.fixture
def row():
    return make_row


@pytest.fixture
def dataset(tmp_path):
    """Callable: rows -> RenderedDataset under a fresh folder of tmp_path."""
    counter = itertools.count()

    def build(rows):
        return write_dataset(tmp_path / f"rendered-{next(counter)}", rows)

    return build
