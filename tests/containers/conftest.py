"""Fixtures: the shared tiny-profile adapter fixtures of tests/adapter_support.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from adapter_support import rendered_dataset, shared_home, trained_adapter  # noqa: E402,F401
