"""The Studio's management API over real HTTP: knobs, presets, validation, estimate, save, security, jobs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

QUICKSTART = {"config": "quickstart"}


def test_openapi_docs_are_served_without_a_cdn(studio):
    status, headers, page = studio.call("/docs")
    assert status == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r"url: '([^']+)'", page)
    assert sources and all(s.startswith("/") for s in sources), sources
    for asset in re.findall(r'src="(/docs/assets/[^"]+)"', page):
        assert studio.call(asset)[0] == 200
    paths = studio.call("/openapi.json")[2]["paths"]
    for path in (
        "/api/configs/validate",
        "/api/configs/estimate",
        "/api/runs",
        "/api/runs/{job_id}/cancel",
        "/api/models/{name}/versions/{version}/promote",
        "/api/adapters/merge",
        "/api/playground",
    ):
        assert path in paths


def test_pages_use_only_the_studios_own_files(studio):
    for page in ("/", "/runs", "/registry", "/merge", "/playground"):
        status, _headers, body = studio.call(page)
        assert status == 200 and "DeepSynth Studio" in body
        links = re.findall(r'(?:src|href)="([^"]+)"', body)
        assert all(link.startswith(("/", "#")) for link in links), links
    for asset in ("/static/studio.js", "/static/studio.css"):
        status, _headers, body = studio.call(asset)
        assert status == 200 and "http://" not in body and "https://" not in body


def test_knobs_are_the_configuration_reference(studio):
    from pipelines.config_reference import sections

    served = {k["key"]: k for s in studio.call("/api/knobs")[2] for k in s["keys"]}
    expected = {k.key for s in sections() if s.name != "serve" for k in s.keys}
    assert set(served) == expected
    assert served["train.lora_rank"]["help"] == "LoRA rank r" and served["train.lora_rank"]["type"] == "int"
    page = studio.call("/")[2]
    assert 'data-key="train.lora_rank"' in page and "LoRA rank r" in page  # every knob with its help, rendered


def test_presets_list_and_show(studio):
    listed = studio.call("/api/presets")[2]
    assert [p["name"] for p in listed] == ["minimal", "standard", "high_capacity", "qlora_4bit", "qlora_8bit"]
    status, _h, shown = studio.call("/api/presets/qlora_8bit")
    assert status == 200 and shown["settings"]["train.qlora_bits"] == 8 and shown["settings"]["train.use_qlora"]
    status, _h, missing = studio.call("/api/presets/huge")
    assert status == 404 and "minimal" in missing["detail"]


def test_config_values_are_the_files_with_defaults(studio):
    values = studio.call("/api/configs/quickstart")[2]["values"]
    assert values["train.lora_rank"] == 16 and values["train.model_name"] == "tiny"
    assert values["train.lora_target_experts"] is False  # a default the file does not set


@pytest.mark.parametrize(
    ("values", "key", "words"),
    [
        ({"train.lora_rank": 0}, "train.lora_rank", "lora_rank: must be at least 1"),
        ({"train.mixed_precision": "fp8"}, "train.mixed_precision", "is not one of"),
        ({"train.lora_rnak": 3}, "train.lora_rnak", "did you mean 'lora_rank'"),
        ({"train.mode": "large"}, "render.modes", "train.mode"),
    ],
)
def test_validation_is_deepsynth_runs_and_names_the_key(studio, values, key, words):
    status, _h, result = studio.call("/api/configs/validate", "POST", {**QUICKSTART, "values": values})
    assert status == 200 and result["ok"] is False
    (error,) = result["errors"]
    assert error["key"] == key and words in error["message"]


def test_a_valid_edit_passes(studio):
    result = studio.call("/api/configs/validate", "POST", {**QUICKSTART, "values": {"train.lora_rank": 8}})[2]
    assert result == {"ok": True, "errors": []}


def test_estimate_counts_the_trainable_parameters_exactly(studio, deepsynth_home):
    from peft import get_peft_model

    from deepsynth.models.loading import load_base_model
    from deepsynth.training.config import TrainerConfig
    from deepsynth.training.lora_config import build_lora_config

    found = {}
    for rank in (4, 16):
        status, _h, found[rank] = studio.call(
            "/api/configs/estimate", "POST", {**QUICKSTART, "values": {"train.lora_rank": rank}}
        )
        assert status == 200
        model = load_base_model("tiny", home=deepsynth_home)[0].requires_grad_(False)
        peft = get_peft_model(model, build_lora_config(TrainerConfig(model_name="tiny", lora_rank=rank)))
        assert found[rank]["trainable_params"] == sum(p.numel() for p in peft.parameters() if p.requires_grad)
    assert found[16]["trainable_params"] == 4 * found[4]["trainable_params"]
    assert set(found[16]["full_size"]) == {"lora", "qlora_8bit", "qlora_4bit"}
    assert any("qlora" in line and "estimate" not in line for line in found[16]["estimated"])


def test_estimate_at_full_size_is_the_memory_benchmarks_measurement(studio):
    measured = json.loads((ROOT / "benchmarks" / "results" / "memory.json").read_text())["results"]
    values = {"train.model_dtype": "bfloat16", "train.lora_rank": 16, "train.lora_alpha": 32}
    estimate = studio.call("/api/configs/estimate", "POST", {**QUICKSTART, "values": values})[2]["full_size"]
    for variant, benchmark in (("lora", "lora_r16"), ("qlora_8bit", "qlora_8bit"), ("qlora_4bit", "qlora_4bit")):
        assert estimate[variant]["trainable_params"] == measured[benchmark]["trainable_params"]
        assert estimate[variant]["total_gb"] == pytest.approx(measured[benchmark]["total_gb"], abs=0.002)
        for part, dtypes in measured[benchmark]["gb_by_part_and_dtype"].items():
            for dtype, gb in dtypes.items():
                assert estimate[variant]["gb_by_part_and_dtype"][part].get(dtype, 0.0) == pytest.approx(gb, abs=2e-4)


def test_estimate_refuses_a_model_directory(studio, tmp_path):
    status, _h, error = studio.call(
        "/api/configs/estimate", "POST", {**QUICKSTART, "values": {"train.model_name": str(tmp_path)}}
    )
    assert status == 422 and error["detail"]["key"] == "train.model_name"


def test_save_writes_a_new_config_under_configs_only(studio):
    body = {**QUICKSTART, "values": {"train.lora_rank": 8, "train.lora_alpha": 16}, "name": "rank8"}
    status, _h, saved = studio.call("/api/configs/save", "POST", body)
    assert status == 200 and saved["path"] == "configs/rank8.yaml"
    path = studio.project / "configs" / "rank8.yaml"
    assert path.read_text().startswith("# Saved by DeepSynth Studio from configs/quickstart.yaml")
    from pipelines.config_loading import load_run_config

    assert load_run_config(path, check=False).train.lora_rank == 8
    assert "rank8" in studio.call("/api/configs")[2]
    assert studio.call("/api/configs/save", "POST", body)[0] == 409  # never over an existing file
    for name in ("../escape", "/tmp/x", "a/b", ".hidden", "x" * 65):
        status, _h, error = studio.call("/api/configs/save", "POST", {**body, "name": name})
        assert status == 400 and "plain name" in error["detail"]
    assert not list(studio.project.glob("escape*")) and not Path("/tmp/x.yaml").exists()
    for config in ("..%2F..%2Fetc%2Fpasswd", "..", "nonexistent"):
        assert studio.call(f"/api/configs/{config}")[0] in (400, 404)
    bad = studio.call("/api/configs/save", "POST", {**body, "name": "bad", "values": {"train.lora_rank": 0}})
    assert bad[0] == 422 and not (studio.project / "configs" / "bad.yaml").exists()


def test_a_run_with_a_bad_config_is_refused_before_it_is_queued(studio):
    before = studio.call("/api/runs")[2]
    status, _h, error = studio.call("/api/runs", "POST", {**QUICKSTART, "values": {"train.lora_rank": 0}})
    assert status == 422 and "lora_rank" in error["detail"]["message"]
    assert studio.call("/api/runs")[2] == before


def test_requests_name_versions_not_paths(studio):
    status, _h, error = studio.call("/api/playground", "POST", {"versions": ["/etc/passwd"], "text": "x"})
    assert status == 400 and "NAME/VERSION" in error["detail"]
    status, _h, error = studio.call("/api/adapters/merge", "POST", {"sources": ["../a", "b/1"]})
    assert status == 400
    assert studio.call("/api/compare?a=/tmp/x&b=m/1")[0] == 400


@pytest.fixture(scope="module")
def guarded(start_studio):
    return start_studio("guarded", token="s3cret")


def test_every_mutation_needs_the_token_when_one_is_set(guarded):
    body = {**QUICKSTART, "values": {}, "name": "tokened"}
    mutations = [
        ("/api/configs/save", body),
        ("/api/runs", QUICKSTART),
        ("/api/runs/20260101-000000-abcdef/cancel", None),
        ("/api/models/m/versions/1/promote", {"alias": "champion", "reason": "x"}),
        ("/api/adapters/merge", {"sources": ["m/1", "m/2"]}),
    ]
    for path, payload in mutations:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-DeepSynth-Token": "nope"}):
            status, response_headers, error = guarded.call(path, "POST", payload, headers)
            assert status == 401 and "DEEPSYNTH_API_TOKEN" in error["detail"], (path, headers)
            assert "set-cookie" not in {k.lower() for k in response_headers}
    status, _h, _saved = guarded.call("/api/configs/save", "POST", body, {"Authorization": "Bearer s3cret"})
    assert status == 200 and (guarded.project / "configs" / "tokened.yaml").is_file()
    assert (
        guarded.call("/api/runs/20260101-000000-abcdef/cancel", "POST", None, {"X-DeepSynth-Token": "s3cret"})[0] == 404
    )
    # reading needs no token
    assert guarded.call("/api/knobs")[0] == 200
    assert guarded.call("/api/configs/validate", "POST", {**QUICKSTART, "values": {}})[0] == 200


def test_binds_to_loopback_by_default(studio):
    assert "http://127.0.0.1:" in studio.stderr.read_text()
    import socket

    addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    for address in addresses - {"127.0.0.1", "127.0.1.1"}:
        with socket.socket() as sock, pytest.raises(OSError):
            sock.settimeout(2)
            sock.connect((address, studio.port))
