"""One reader for configuration files: run configs, stack recipes and the serve config fail alike.

Broken YAML is exit code 2 with one ``error:`` line that names the file and the line, never a
traceback; no command loads a model or a store before its config file is read.
"""

from __future__ import annotations

import pytest

from deepsynth.errors import ConfigError
from deepsynth.yaml_bounds import MAX_CONFIG_BYTES, read_yaml
from deepsynth_cli import main

BROKEN = "serve:\n  port: 8080\n  host: [127.0.0.1\n"  # the flow sequence is never closed


@pytest.mark.parametrize(
    "argv",
    [["serve", "--model", "./no-such-package", "--config"], ["run", "--config"], ["stack", "register", "--check"]],
)
def test_broken_yaml_exits_2_naming_the_file_and_line(argv, tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    assert main([*argv, str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"error: {broken}, line 4: invalid YAML" in err, err
    assert "Traceback" not in err


def test_the_reader_refuses_what_is_not_a_mapping_and_reads_an_empty_file_as_empty(tmp_path):
    empty, listed, big, binary = (tmp_path / name for name in ("empty.yaml", "list.yaml", "big.yaml", "bin.yaml"))
    empty.write_text("")
    listed.write_text("- a\n- b\n")
    big.write_text("#" * (MAX_CONFIG_BYTES + 1))
    binary.write_bytes(b"\xff\xfe\x00")
    assert read_yaml(empty) == {}
    for path, problem in (
        (listed, "expected a mapping"),
        (big, "bytes"),
        (binary, "not a text file"),
        (tmp_path / "missing.yaml", "config file not found"),
    ):
        with pytest.raises(ConfigError, match=problem) as caught:
            read_yaml(path)
        assert str(caught.value).startswith(str(path))


def test_the_serve_config_keeps_its_own_checks(tmp_path):
    from deepsynth.serving.config import ServeConfig

    config = tmp_path / "serve.yaml"
    config.write_text("serve:\n  port: 9000\nextra: 1\n")
    with pytest.raises(ConfigError, match="expected one top-level section, serve"):
        ServeConfig.from_yaml(config)
    config.write_text("serve:\n  port: 9000\n")
    assert ServeConfig.from_yaml(config).port == 9000


def test_one_json_reader_for_job_configs(tmp_path):
    from deepsynth.configuration import from_json
    from deepsynth.export.config import ExportConfig
    from deepsynth.training.config import TrainerConfig

    job = tmp_path / "train.json"
    job.write_text('{"learning_rate": 0.001}')
    assert from_json(TrainerConfig, job, "training config").learning_rate == 0.001
    assert from_json(ExportConfig, '{"output_dir": "out"}', "export config").output_dir == "out"
    for given, problem in (
        ('{"learning_rate": ', "training config: invalid JSON"),
        (tmp_path / "none.json", "none.json: cannot read the training config"),
        ('{"learning_rat": 1}', "learning_rat"),
    ):
        with pytest.raises(ConfigError, match=problem):
            from_json(TrainerConfig, given, "training config")
