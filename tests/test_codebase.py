"""Rules of the codebase that a test can hold: no ZenML in the domain library, no remote code."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ["deepsynth", "pipelines", "steps", "materializers", "benchmarks"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_library_never_imports_zenml():
    offenders = [str(p) for p in (ROOT / "deepsynth").rglob("*.py") if "zenml" in _imports(p)]
    assert not offenders


def test_no_trust_remote_code_anywhere():
    needle = "trust_remote_code=" + "True"
    offenders = [str(p) for pkg in PACKAGES + ["tests"] for p in (ROOT / pkg).rglob("*.py") if needle in p.read_text()]
    assert not offenders
