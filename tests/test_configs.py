"""Every YAML in configs/ loads strictly; overrides and config errors name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepsynth.data.config import IngestConfig
from deepsynth.errors import ConfigError
from pipelines.config import RunConfig
from pipelines.config_loading import load_run_config

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_loads_and_documents_itself(path):
    config = load_run_config(path)
    assert isinstance(config, RunConfig)
    lines = path.read_text().splitlines()
    assert any("deepsynth run --config" in line or "make run" in line for line in lines[:3]), "launch command in the header"
    knobs = [ln for ln in lines if ":" in ln and not ln.lstrip().startswith("#") and not ln.rstrip().endswith(":")]
    assert all("#" in ln for ln in knobs), [ln for ln in knobs if "#" not in ln]


def test_unknown_key_is_an_error_naming_file_and_key(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("render:\n  max_page: 3\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: render\.max_page: unknown key \(did you mean 'max_pages'\?\)"):
        load_run_config(path)


def test_overrides_apply_dotted_keys_with_yaml_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("render:\n  modes: [base]\n")
    config = load_run_config(path, ["render.modes=[tiny, small]", "ingest.max_documents=5", "validate.min_valid_rows=2"])
    assert config.render.modes == ["tiny", "small"] and config.ingest.max_documents == 5
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_run_config(path, ["render.modes"])
    with pytest.raises(ConfigError, match="render.max_pages: expected int"):
        load_run_config(path, ["render.max_pages=many"])


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("render:\n  modes: [tiny\n  max_pages: 2\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml, line \d+: invalid YAML"):
        load_run_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_run_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize("build, message", [
    (lambda: IngestConfig(on_bad_row="bogus"), "ingest.on_bad_row: 'bogus' is not one of"),
    (lambda: IngestConfig(source="nope"), "ingest.source: 'nope' is not one of"),
    (lambda: RunConfig(pipeline="deploy"), "run.pipeline: 'deploy' is not one of"),
])
def test_enumerated_fields_are_checked_on_construction(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_the_export_section_has_only_the_keys_the_pipeline_uses():
    with pytest.raises(ConfigError, match="export.model_path: unknown key"):
        load_run_config(CONFIGS[0].with_name("quickstart.yaml"), ["export.model_path=./elsewhere"])
