"""Docs are tests: every fenced ``bash`` and ``python`` block of README.md and docs/*.md runs as written.

The blocks run in document order, as a new user would paste them, in a project folder of their own
(the checkout's files linked in, the virtualenv on ``PATH`` as after ``source .venv/bin/activate``,
no ``DEEPSYNTH_HOME``, ``HOME`` inside the folder). ``bash`` blocks run with ``bash -eo pipefail``;
``python`` blocks run as scripts in a fresh process, without a main guard.

A block runs as written unless the line just above its fence is a directive comment:

- ``<!-- docs-test: skip REASON -->``: not run, and the reason is printed (it needs a GPU, a cluster
  or the network, or it is this test suite itself).
- ``<!-- docs-test: serves URL -->``: a command that runs until stopped: it must answer at URL, then
  it gets Ctrl+C (SIGINT) and must stop by itself.

The fixture fills the placeholders a reader fills (:func:`fill`): ``<id>`` (the local store id
printed by ``make run``), ``<run name>`` and ``<run id>`` (the newest pipeline run), the hub name
``deepseek-ai/DeepSeek-OCR`` (the tiny profile: no hub here) and ``/tmp/env`` (a folder of the test);
the files the commands name (``paper.txt``, ``my_docs.jsonl``, ``my_docs.csv``, ``page1.png``) are
made in the project folder.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]
LINKED = ["Makefile", "pyproject.toml", "requirements.lock", "configs", ".venv", "README.md"]
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(skip|serves)\s+(.*?)\s*-->\s*$")
#: What a block's output must show (a block whose text contains the key): beyond exit 0.
EXPECTED_OUTPUT = {
    "deepsynth models list": r"deepsynth-summarizer",
    "curl -s http://127.0.0.1:8080/v1/summarize": r'"summary":',
    "curl -s -X POST http://127.0.0.1:5001/invocations": r'"predictions"',
    "IncrementalDatasetGenerator": r"",
}


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text and its directive (if any)."""

    path: Path
    line: int
    lang: str
    text: str
    directive: str | None
    argument: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The runnable (``bash`` and ``python``) blocks of a Markdown file, in order."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        if match.group(1) not in ("bash", "python"):
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        directive = _DIRECTIVE.search(before)
        found.append(
            Block(
                path,
                text.count("\n", 0, match.start()) + 1,
                match.group(1),
                match.group(2),
                directive and directive.group(1),
                directive.group(2) if directive else "",
            )
        )
    return found


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
BLOCKS = [block for path in DOCUMENTS for block in blocks(path)]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A user's project folder: the checkout's files linked in, the input files the docs name."""
    folder = tmp_path_factory.mktemp("project")
    for name in LINKED:
        (folder / name).symlink_to(ROOT / name)
    (folder / "paper.txt").write_text(
        "We study the summarisation of rendered pages. A LoRA adapter on the decoder "
        "learns to write the abstract. It beats lead-3 on ACL papers.\n"
    )
    docs = [
        {
            "id": f"d{i}",
            "text": f"Document {i}. The council met on day {i} and approved item {i}. "
            "Work on the new bridge starts in May and ends in June.",
            "summary": f"Item {i} approved.",
        }
        for i in range(16)
    ]
    (folder / "my_docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "my_docs.csv").write_text(
        "id,body,summary\n" + "".join(f'{d["id"]},"{d["text"]}",{d["summary"]}\n' for d in docs)
    )
    from PIL import Image, ImageDraw

    page = Image.new("L", (512, 512), 255)
    ImageDraw.Draw(page).text((20, 20), "The council approved the budget.", fill=0)
    page.save(folder / "page1.png")
    return folder


@pytest.fixture(scope="module")
def user_env(project):
    """The environment of a user with the virtualenv activated and no DeepSynth variables set."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DEEPSYNTH_", "ZENML_", "MLFLOW_", "PYTEST_", "VIRTUAL_ENV"))
    }
    env.update(
        HOME=str(project),
        VIRTUAL_ENV=str(project / ".venv"),
        PATH=f"{project / '.venv' / 'bin'}:{os.environ['PATH']}",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="module")
def made_project(project, user_env, tmp_path_factory):
    """The project folder after the README's first command, ``make run``: the home every later block uses."""
    first = BLOCKS[0].text.splitlines()[0].split("#")[0].strip()
    assert first == "make run", f"README's first command is {first!r}"
    done = subprocess.run(first.split(), cwd=project, env=user_env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"make run exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert (project / ".deepsynth" / "zenml").is_dir(), "make run did not make the project's store at ./.deepsynth"
    return project


def newest_run(project: Path, env: dict) -> tuple[str, str]:
    """(name, id) of the project store's newest pipeline run, read with ZenML's client."""
    code = (
        "from zenml.client import Client; r = Client().list_pipeline_runs(sort_by='desc:created', size=1).items[0];"
        "print(r.name); print(r.id)"
    )
    out = subprocess.run(
        [str(project / ".venv" / "bin" / "python"), "-c", code],
        cwd=project,
        capture_output=True,
        text=True,
        env={**env, "ZENML_CONFIG_PATH": str(project / ".deepsynth" / "zenml")},
        timeout=300,
        check=True,
    )
    name, run_id = out.stdout.split()[-2:]
    return name, run_id


def fill(block: Block, project: Path, env: dict) -> str:
    """The block's text with the reader's placeholders filled in (see the module docstring)."""
    text = block.text.replace("deepseek-ai/DeepSeek-OCR", "tiny").replace("/tmp/env", str(project / "env"))
    if "<id>" in text:
        (store,) = {p.parent.name for p in (project / ".deepsynth" / "zenml" / "local_stores").glob("*/mlflow.db")}
        text = text.replace("<id>", store)
    if "<run name>" in text or "<run id>" in text:
        name, run_id = newest_run(project, env)
        text = text.replace("<run name>", name).replace("<run id>", run_id)
    leftover = re.findall(r"<[a-z][a-z ]*>", text)
    assert not leftover, f"{block.id}: placeholders no fixture fills: {leftover}"
    return text


def wait_until_answers(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    """Poll ``url`` until it answers with any HTTP status; fail if the process ends or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"ended with exit {process.returncode} before {url} answered"
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(1)
    pytest.fail(f"{url} did not answer within {timeout_s:.0f} s")


def run_block(block: Block, text: str, project: Path, env: dict, log: Path) -> tuple[int, str, str]:
    """Run one block in its own process group; stop whatever it left running. (exit code, stdout, stderr)."""
    script = log.with_suffix(".py" if block.lang == "python" else ".sh")
    script.write_text(text)
    argv = (
        [str(project / ".venv" / "bin" / "python"), str(script)]
        if block.lang == "python"
        else ["bash", "-eo", "pipefail", str(script)]
    )
    out, err = log.with_suffix(".out"), log.with_suffix(".err")
    with out.open("w") as stdout, err.open("w") as stderr:  # files, not pipes: background servers keep pipes open
        process = subprocess.Popen(
            argv, cwd=project, env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True
        )
        try:
            if block.directive == "serves":
                wait_until_answers(block.argument, process, timeout_s=300)
                os.killpg(process.pid, signal.SIGINT)
                code = process.wait(timeout=120)
            else:
                code = process.wait(timeout=1200)
        finally:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    return code, out.read_text(), err.read_text()


def test_every_runnable_block_is_found_and_every_directive_is_known():
    assert len(BLOCKS) >= 10, [b.id for b in BLOCKS]
    written = sum(path.read_text().count("docs-test:") for path in DOCUMENTS)
    assert written == sum(1 for b in BLOCKS if b.directive), "a docs-test comment is not right above a fence"
    for block in BLOCKS:
        assert block.directive != "skip" or len(block.argument) > 10, f"{block.id}: a skip needs its reason"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block_runs_as_written(block, made_project, user_env, tmp_path):
    if block.directive == "skip":
        pytest.skip(f"{block.id}: {block.argument}")
    code, out, err = run_block(block, fill(block, made_project, user_env), made_project, user_env, tmp_path / "block")
    assert code == 0, f"{block.id} exited {code}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-5000:]}"
    for key, pattern in EXPECTED_OUTPUT.items():
        if key in block.text:
            assert re.search(pattern, out), f"{block.id}: stdout lacks {pattern!r}\n{out[-3000:]}"
    assert "Traceback" not in err, f"{block.id}: a traceback on stderr\n{err[-5000:]}"
