"""Every YAML in configs/ loads strictly; overrides and config errors name the file and key."""

from __future__ import annotations

import json
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
    assert any("deepsynth run --config" in line or "make run" in line for line in lines[:3]), (
        "launch command in the header"
    )
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
    config = load_run_config(
        path, ["render.modes=[tiny, small]", "ingest.max_documents=5", "validate.min_valid_rows=2"]
    )
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


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: IngestConfig(on_bad_row="bogus"), "ingest.on_bad_row: 'bogus' is not one of"),
        (lambda: IngestConfig(source="nope"), "ingest.source: 'nope' is not one of"),
        (lambda: RunConfig(pipeline="deploy"), "run.pipeline: 'deploy' is not one of"),
    ],
)
def test_enumerated_fields_are_checked_on_construction(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_the_export_section_has_only_the_keys_the_pipeline_uses():
    with pytest.raises(ConfigError, match="export.model_path: unknown key"):
        load_run_config(CONFIGS[0].with_name("quickstart.yaml"), ["export.model_path=./elsewhere"])


def _laughs(levels: int = 9, width: int = 9) -> str:
    """A flow sequence whose last item expands to width**levels strings (the billion-laughs bomb)."""
    names = "abcdefghijklmnop"[:levels]
    items = [f"&{names[0]} [" + ", ".join(["lol"] * width) + "]"]
    items += [f"&{cur} [" + ", ".join([f"*{prev}"] * width) + "]" for prev, cur in zip(names, names[1:])]
    return "[" + ", ".join(items) + "]"


# each mapping merges the one before nine times: flattening the merges copies 9**9 key-value pairs
MERGE_BOMB = "  m0: &m0 {k: lol}\n" + "".join(
    f"  m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}\n" for i in range(1, 10)
)
BOMBS = {  # name → (YAML file text or None, --set items, what the refusal says)
    "file: run_name": (f"run_name: {_laughs()}\n", [], "expands to more than"),
    "file: a dict section": (f"deployment:\n  gpu_node_selector:\n    bomb: {_laughs()}\n", [], "expands to more than"),
    "file: merge keys": ("deployment:\n  gpu_node_selector:\n" + MERGE_BOMB, [], "expands to more than"),
    "file: recursive alias": ("run_name: &loop [*loop]\n", [], "refers to itself"),
    "--set: run_name": (None, [f"run_name={_laughs()}"], "aliases are not allowed in --set"),
    "--set: a dict section": (
        None,
        [f"deployment.gpu_node_selector={{bomb: {_laughs()}}}"],
        "aliases are not allowed in --set",
    ),
}
CHILD = """
import json, resource, sys
from pipelines.config_loading import load_run_config
from deepsynth.errors import ConfigError
def vm_mb():
    return int(open('/proc/self/status').read().split('VmSize:')[1].split()[0]) // 1024
# a guard, so that a regression fails here instead of swapping the machine
resource.setrlimit(resource.RLIMIT_AS, ((vm_mb() + 2048) * 2**20,) * 2)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {}
for name, (path, overrides) in json.loads(sys.argv[1]).items():
    try:
        load_run_config(path, overrides, check=False)
        out[name] = None
    except ConfigError as exc:
        out[name] = str(exc)
    except MemoryError:
        out[name] = 'MemoryError'
out['rss_growth_mb'] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps(out))
"""


def test_yaml_alias_bombs_in_a_file_or_set_are_refused_in_bounded_memory(tmp_path):
    import json
    import subprocess
    import sys

    cases = {}
    for i, (name, (text, overrides, _)) in enumerate(BOMBS.items()):
        path = None
        if text is not None:
            path = tmp_path / f"bomb{i}.yaml"
            path.write_text(text)
        cases[name] = (str(path) if path else None, overrides)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[1],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    for name, (_, _, says) in BOMBS.items():
        message = result[name]
        assert message and says in message, (name, (message or "loaded")[:500])
        assert len(message) < 600, (name, len(message))  # never the expanded value
    assert result["rss_growth_mb"] < 100


def test_a_config_file_too_large_to_be_a_config_is_refused(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("run_name: x\n" + "# padding\n" * 40_000)
    with pytest.raises(ConfigError, match=r"huge\.yaml: [\d,]+ bytes; a configuration file is at most"):
        load_run_config(path)


@pytest.mark.parametrize(
    "override",
    [
        "deployment.cpu_image=" + "x " * 100_000,  # refused by the section's own check, which quotes the value
        "run_name=[" + ", ".join(map(str, range(30_000))) + "]",  # wrong type: the message shows the value
        "render.modes=[" + ", ".join(["huge"] * 30_000) + "]",
        "=" + "y" * 100_000,
    ],
)
def test_error_messages_never_print_an_unbounded_value(override):
    with pytest.raises(ConfigError) as refused:
        load_run_config(None, [override], check=False)
    assert len(str(refused.value)) < 600


@pytest.mark.parametrize(
    "override, key",
    [
        ("ingest.instruction_prompt=Summarize this for ${HF_TOKEN} in one line", "ingest.instruction_prompt"),
        ("run_name=nightly-${HF_TOKEN}", "run_name"),
        ("register.model_name=${HF_TOKEN}", "register.model_name"),
        ("ingest.hf_splits=[train, 'x${HF_TOKEN}']", "ingest.hf_splits[1]"),
        ("deployment.gpu_node_selector={'${HF_TOKEN}': 'true'}", "deployment.gpu_node_selector"),
    ],
)
def test_environment_references_in_user_strings_are_refused(monkeypatch, override, key):
    """ZenML replaces ${VAR} in every string of a run's configuration: an instruction prompt or run name
    would carry the variable's value into the data, the run's name and the stores."""
    monkeypatch.setenv("HF_TOKEN", "hf_CANARYconfigTOKEN")
    with pytest.raises(ConfigError) as refused:
        load_run_config(None, [override], check=False)
    message = str(refused.value)
    assert message.startswith(f"--set {key.split('[')[0]}") and "${HF_TOKEN}" in message
    # a registered model name is refused earlier by its own pattern, which allows no '$' (issue 27, item 12)
    reason = "not a usable registered model name" if key == "register.model_name" else "takes no environment references"
    assert reason in message and "hf_CANARY" not in message


def test_environment_references_stay_allowed_where_documented(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPSYNTH_REGISTRY", "registry.example.com")
    path = tmp_path / "run.yaml"
    path.write_text("run_name: weekly\ningest:\n  instruction_prompt: ${HF_TOKEN}\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: ingest\.instruction_prompt: '\$\{HF_TOKEN\}'"):
        load_run_config(path, check=False)
    config = load_run_config(
        None, ["deployment.cpu_image=${DEEPSYNTH_REGISTRY}/cpu:1", "tracking.server=${MLFLOW_URI}"], check=False
    )
    assert config.deployment.cpu_image == "${DEEPSYNTH_REGISTRY}/cpu:1"  # expanded when used, not here


def test_a_stack_recipe_is_read_within_the_same_bounds(tmp_path):
    from pipelines.stack_recipes import load_recipe

    path = tmp_path / "bomb-stack.yaml"
    path.write_text(f"name: bomb\ncomponents:\n  orchestrator: {{flavor: local, configuration: {{x: {_laughs()}}}}}\n")
    with pytest.raises(ConfigError, match=r"bomb-stack\.yaml: expands to more than 20,000 values"):
        load_recipe(path)


def _float_keys() -> list[str]:
    from deepsynth.configuration import key_docs

    return [doc.key for doc in key_docs(RunConfig) if "float" in doc.type.split(" | ")]


FLOAT_KEYS = _float_keys()


def test_the_run_configuration_has_float_keys_to_check():
    assert {"train.learning_rate", "train.optimizer.learning_rate", "register.margin"} <= set(FLOAT_KEYS)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_nan_and_infinity_are_refused_for_every_float_key_naming_it(key, value):
    """A NaN passes every `<`/`>` bound (`nan <= 0` is False): `train.learning_rate=.nan` used to fail the run
    later, `register.margin=.nan` made the gate never promote."""
    with pytest.raises(ConfigError) as refused:
        load_run_config(None, [f"{key}={value}"], check=False)
    assert refused.value.key == key and refused.value.exit_code == 2
    assert str(refused.value).startswith(f"--set {key}: ") and "is not a finite number" in str(refused.value)


def test_nan_inside_a_mapping_or_a_file_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="is not a finite number") as refused:
        load_run_config(None, ["ingest.split_ratios={train: .nan, validation: 0.5, test: 0.5}"], check=False)
    assert refused.value.key == "ingest.split_ratios.train"  # nan + 1.0 - 1 > 1e-6 is False: the sum check missed it
    path = tmp_path / "run.yaml"
    path.write_text("register:\n  margin: .nan  # the gate\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: register\.margin: nan is not a finite number"):
        load_run_config(path, check=False)


@pytest.mark.parametrize("override", ["train.learning_rate=.nan", "register.margin=.nan"])
def test_run_with_a_nan_setting_exits_2_before_anything_runs(override, capsys):
    from deepsynth_cli import main

    config = Path(__file__).parents[1] / "configs" / "quickstart.yaml"
    assert main(["run", "--config", str(config), "--set", override, "--json"]) == 2
    error = json.loads(capsys.readouterr().out)
    key = override.split("=")[0]
    assert error == {"error": f"--set {key}: nan is not a finite number (NaN and infinity are refused)", "exit_code": 2}


def test_a_json_job_config_with_nan_or_a_lone_surrogate_is_refused(tmp_path):
    from deepsynth.training.config import TrainerConfig

    job = tmp_path / "job.json"
    job.write_text('{"learning_rate": NaN}')  # Python's json reads NaN and Infinity
    with pytest.raises(ConfigError, match=r"job\.json: learning_rate: nan is not a finite number"):
        TrainerConfig.from_json(job)
    job.write_text('{"lora_target_modules": ["q_proj", "\\udc00"]}')
    with pytest.raises(ConfigError, match=r"lora_target_modules\[1\]: lone surrogate U\+DC00 at character 1"):
        TrainerConfig.from_json(job)
