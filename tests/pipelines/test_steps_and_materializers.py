"""Steps called through .entrypoint(), and a save/load round trip for every custom materializer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepsynth.data.config import IngestConfig
from deepsynth.data.documents import DocumentDataset
from deepsynth.data.ingest import source_revision
from deepsynth.data.rendered import RenderedDataset
from deepsynth.errors import DataValidationError
from deepsynth.rendering.config import RenderSettings
from deepsynth.validation import ValidationConfig, ValidationReport


@pytest.fixture
def data_files(write_jsonl, make_docs):
    docs = make_docs(6) + [{"id": "empty", "text": "  ", "summary": "s"}]
    return write_jsonl(docs)


@pytest.fixture
def stepped(data_files):
    """ingest → render_pages → validate_dataset through their entrypoints."""
    from steps.ingest import ingest
    from steps.render_pages import render_pages
    from steps.validate_dataset import validate_dataset

    config = IngestConfig(source="file", path=str(data_files))
    documents = ingest.entrypoint(config, source_revision(config))
    rendered = render_pages.entrypoint(documents, RenderSettings(modes=["tiny"], workers=1))
    valid, quarantine, report = validate_dataset.entrypoint(documents, rendered, ValidationConfig())
    return documents, rendered, valid, quarantine, report


def test_steps_chain_through_entrypoints(stepped):
    documents, rendered, valid, quarantine, report = stepped
    assert documents.table.num_rows == 7 and len(rendered) == 7
    assert len(valid) == 6 and [q["id"] for q in quarantine] == ["empty"]
    assert report.success and report.ingested == report.valid + report.quarantined == 7


def test_ingest_step_refuses_a_source_that_changed(data_files):
    from steps.ingest import ingest

    with pytest.raises(RuntimeError, match="source changed"):
        ingest.entrypoint(IngestConfig(source="file", path=str(data_files)), "sha256:stale")


def test_quality_gate_raises_exit_3(stepped):
    from steps.validate_dataset import check_data_quality

    report = stepped[-1]
    assert check_data_quality.entrypoint(report) is True
    failed = ValidationReport.from_dict({**report.to_dict(), "success": False, "failures": ["too few rows"]})
    with pytest.raises(DataValidationError) as info:
        check_data_quality.entrypoint(failed)
    assert info.value.exit_code == 3


def _round_trip(materializer_cls, data, tmp_path, data_type):
    uri = tmp_path / "artifact"
    uri.mkdir()
    materializer = materializer_cls(str(uri))
    materializer.save(data)
    loaded = materializer_cls(str(uri)).load(data_type)
    metadata = materializer.extract_metadata(data)
    visuals = materializer.save_visualizations(data)
    assert visuals and all(Path(p).is_file() and Path(p).stat().st_size > 100 for p in visuals)
    json.dumps(metadata)  # metadata must be plain JSON
    return loaded, metadata


def test_document_dataset_materializer(stepped, tmp_path):
    from materializers import DocumentDatasetMaterializer

    documents = stepped[0]
    loaded, meta = _round_trip(DocumentDatasetMaterializer, documents, tmp_path, DocumentDataset)
    assert loaded.table.equals(documents.table) and loaded.revision == documents.revision
    assert meta["rows_per_split"] == documents.rows_per_split and meta["content_hash"] == documents.content_hash


def test_rendered_dataset_materializer(stepped, tmp_path):
    from materializers import RenderedDatasetMaterializer

    rendered = stepped[1]
    loaded, meta = _round_trip(RenderedDatasetMaterializer, rendered, tmp_path, RenderedDataset)
    assert [d.pages for d in loaded.iter_documents()] == [d.pages for d in rendered.iter_documents()]
    assert meta["rows"] == 7 and meta["pages"] == rendered.manifest["pages"]
    grid = tmp_path / "artifact" / "thumbnails.png"
    from PIL import Image

    assert Image.open(grid).size[0] >= 4 * 180


def test_validation_report_materializer(stepped, tmp_path):
    from materializers import ValidationReportMaterializer

    report = stepped[-1]
    loaded, meta = _round_trip(ValidationReportMaterializer, report, tmp_path, ValidationReport)
    assert loaded.to_dict() == report.to_dict() and meta["quarantined"] == 1
    assert "empty" in (tmp_path / "artifact" / "report.html").read_text()


def test_code_dependencies_of_step_caches_resolve_from_the_project_root_whatever_the_entry_point():
    """Under `python -m` of a package (its __main__ in a subfolder) ZenML took that folder as the source root."""
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    probe = (
        f"import sys; sys.modules['__main__'].__file__ = {str(root / 'deepsynth_cli' / '__main__.py')!r}\n"
        "from steps.render_pages import RENDER_CACHE\nfrom steps.validate_dataset import VALIDATE_CACHE\n"
        "deps = RENDER_CACHE.source_dependencies + VALIDATE_CACHE.source_dependencies\n"
        "print('DEPS', *(s.import_path for s in deps))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=root).stdout
    paths = next(line for line in out.splitlines() if line.startswith("DEPS")).split()[1:]
    assert len(paths) == 12 and all(p.startswith("deepsynth.") for p in paths), paths


def test_scratch_output_folders_are_removed_when_the_process_exits(tmp_path):
    """A step's output folder outside the artifact store (remote store, or no step context) and a downloaded
    artifact's copy live in the temp dir until the process ends; they used to stay there for good."""
    import os
    import subprocess
    import sys

    probe = (
        "import os; from steps.common import output_dir; from deepsynth.process_exit import temp_dir_until_exit\n"
        "made = [output_dir('adapter'), temp_dir_until_exit('deepsynth-artifact-')]\n"
        "for path in made: open(os.path.join(path, 'weights'), 'w').write('x')\n"
        "print(*made)"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    root = Path(__file__).parents[2]
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=root, env=env)
    made = [Path(p) for p in out.stdout.split()]
    assert len(made) == 2 and all(p.parent == tmp_path for p in made), made
    assert not any(p.exists() for p in made) and list(tmp_path.iterdir()) == []
