"""Fixtures: the shared tiny-profile adapter fixtures of tests/adapter_support.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from adapter_support import (  # noqa: E402,F401
    loaded_adapter, rendered_dataset, shared_home, test_docs, trained_adapter,
)
