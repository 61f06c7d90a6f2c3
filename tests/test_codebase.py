"""Rules of the codebase that a test can hold: imports run one way, no remote code.

The layers, from the top: the command line (``deepsynth_cli``) → ``pipelines`` → ``steps``
(with ``materializers`` beside them) → ``deepsynth``, the domain library, which never reaches ZenML.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ["deepsynth", "deepsynth_cli", "pipelines", "steps", "materializers", "benchmarks"]

#: What each package must not import (at any depth, lazily inside functions included).
FORBIDDEN = {
    "deepsynth": {"zenml", "pipelines", "steps", "materializers", "deepsynth_cli"},
    "materializers": {"steps", "pipelines", "deepsynth_cli"},
    "steps": {"pipelines", "deepsynth_cli"},
    "pipelines": {"deepsynth_cli"},
}


def _imports(path: Path) -> set[str]:
    """Top-level names of every absolute import in ``path`` (module level and inside functions)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_run_one_way(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert not {name: found for name, found in offenders.items() if found}


def test_importing_every_domain_module_loads_no_zenml():
    """Importing each module of deepsynth/ leaves zenml (and the layers above) out of sys.modules."""
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "deepsynth").rglob("*.py")
    )
    script = ROOT / "tests" / "support" / "loaded_modules.py"
    out = subprocess.run([sys.executable, str(script), *modules], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = {name.split(".")[0] for name in json.loads(out.stdout.splitlines()[-1])["modules"]}
    assert not loaded & FORBIDDEN["deepsynth"]


def test_no_trust_remote_code_anywhere():
    needle = "trust_remote_code=" + "True"
    offenders = [str(p) for pkg in PACKAGES + ["tests"] for p in (ROOT / pkg).rglob("*.py") if needle in p.read_text()]
    assert not offenders


def _deepsynth_imports(path: Path) -> set[str]:
    """Dotted ``deepsynth.*`` names imported by ``path`` (module level and inside functions).

    ``import a.b.c`` gives ``a.b.c``; ``from a.b import c`` gives ``a.b`` and ``a.b.c`` (``c`` may be a submodule).
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith("deepsynth.")}


#: (package, packages above it that it must never import): the layers inside deepsynth/.
LAYERS = [
    ("rendering", ("data", "models", "training", "inference", "registry", "serving", "export")),
    ("data", ("models", "training", "inference", "registry", "serving", "export")),
    ("models", ("training", "inference", "registry", "serving", "export")),
    ("inference", ("training", "registry", "serving", "export")),
]


@pytest.mark.parametrize(("package", "above"), LAYERS, ids=[layer[0] for layer in LAYERS])
def test_layers_inside_deepsynth_import_only_downwards(package, above):
    """Rendering and data sit below models, models below training and inference, inference below registry,
    serving and export (module-level imports and imports inside functions alike)."""
    forbidden = tuple(f"deepsynth.{name}" for name in above)
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in _deepsynth_imports(path) if n.startswith(forbidden))
        for path in (ROOT / "deepsynth" / package).rglob("*.py")
    }
    assert not {name: found for name, found in offenders.items() if found}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle in ``graph`` as a path that ends where it starts, or ``[]`` when there is none."""
    done: set[str] = set()
    for start in sorted(graph):
        stack, path = [(start, iter(sorted(graph[start])))], [start]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                done.add(node)
                stack.pop()
                path.pop()
            elif child in path:
                return path[path.index(child) :] + [child]
            elif child not in done:
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return []


def _deepsynth_graph(collapse: bool) -> dict[str, set[str]]:
    """What each module of deepsynth/ imports of deepsynth/ (``collapse``: between its top-level packages)."""
    paths = {_module_name(path): path for path in (ROOT / "deepsynth").rglob("*.py")}

    def node(name: str) -> str:
        return ".".join(name.split(".")[:2]) if collapse else name

    graph: dict[str, set[str]] = {node(name): set() for name in paths}
    for name, path in paths.items():
        graph[node(name)] |= {node(dep) for dep in _deepsynth_imports(path) if dep in paths} - {node(name)}
    return graph


@pytest.mark.parametrize("collapse", [False, True], ids=["modules", "packages"])
def test_no_import_cycles_in_deepsynth(collapse):
    """No module of deepsynth/ imports itself through others, and neither do its packages (rendering, export,
    serving...) taken whole; imports inside functions and package ``__init__`` imports count."""
    cycle = _find_cycle(_deepsynth_graph(collapse))
    assert not cycle, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        (
            "deepsynth.data.rendered",
            ("deepsynth.rendering", "PIL"),
        ),  # the dataset format, read by training and validation
        (
            "deepsynth.data.ingest",
            ("deepsynth.rendering", "PIL", "deepsynth.adapter_files"),
        ),  # hashes with deepsynth.integrity
    ],
)
def test_data_modules_load_without_the_renderer(module, absent):
    """Importing a data module in a fresh interpreter loads neither the renderer, nor Pillow, nor adapter code."""
    script = ROOT / "tests" / "support" / "loaded_modules.py"
    out = subprocess.run([sys.executable, str(script), module], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = json.loads(out.stdout.splitlines()[-1])["modules"]
    assert module in loaded
    assert not [name for name in loaded if name in absent or name.startswith(tuple(f"{a}." for a in absent))]


def _test_files() -> list[Path]:
    return [p for p in (ROOT / "tests").rglob("*.py") if "support" not in p.relative_to(ROOT / "tests").parts]


def test_shared_test_helpers_live_in_tests_support_only():
    """A test file imports shared helpers as ``support.<module>``, never from another test file or a loose helper."""
    local = {p.stem for p in _test_files()}
    offenders = []
    for path in _test_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in local]
    assert not offenders, offenders


def test_one_copy_of_the_byte_tamper_helper():
    """Stored bytes are corrupted by ``support.tamper`` only: one way to flip a byte, not one per test file."""
    flips = ("^= 0xFF", "^= 0xff")
    this = Path(__file__).resolve()
    copies = [
        str(p.relative_to(ROOT))
        for p in _test_files()
        if p.resolve() != this and any(flip in p.read_text() for flip in flips)
    ]
    assert not copies, copies
