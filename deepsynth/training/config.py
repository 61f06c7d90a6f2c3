"""TrainerConfig: every knob of a LoRA / QLoRA training run, validated on construction.

Build it in code (``TrainerConfig(...)``), from a dict (``TrainerConfig.from_dict``: a JSON training
job configuration with these keys; unknown keys are errors) or from a JSON file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import InitVar, asdict, dataclass, fields, replace
from typing import Any, Literal

from deepsynth.configuration import Section, from_dict, from_json, knob, to_dict
from deepsynth.errors import ConfigError
from deepsynth.training.variants import check_multi_adapter, expand_variants

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


#: Optimizer settings a TrainerConfig (and a flat YAML or JSON training config) also takes at its top level.
OPTIMIZER_SHORTHANDS = ("learning_rate", "weight_decay", "warmup_steps", "lr_scheduler", "max_grad_norm")


@dataclass
class OptimizerConfig(Section):
    """The optimizer and its learning-rate schedule (``train.optimizer``; a bare name is accepted too)."""

    _section = "train.optimizer"

    name: Literal["adamw", "adamw_8bit"] = knob("adamw", "adamw (torch; fused on CUDA) or adamw_8bit (bitsandbytes)")
    learning_rate: float = knob(5e-4, "peak learning rate")
    weight_decay: float = knob(0.0, "AdamW weight decay")
    warmup_steps: int = knob(0, "linear warm-up steps")
    lr_scheduler: Literal["linear", "cosine", "constant"] = knob("linear", "decay after warm-up")
    max_grad_norm: float = knob(1.0, "gradient clipping norm (0 disables)")

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.max_grad_norm < 0:
            raise ValueError("warmup_steps, weight_decay and max_grad_norm must not be negative")


@dataclass(frozen=True)
class LoraPreset:
    """A named LoRA (and optionally QLoRA) setting: the ``TrainerConfig`` values it stands for.

    Attributes:
        name: Preset name.
        rank: LoRA rank r.
        alpha: LoRA alpha.
        dropout: LoRA dropout.
        use_qlora: Quantize the decoder.
        qlora_bits: 4 or 8.
        qlora_type: nf4 or fp4 (4-bit).
        qlora_double_quant: Double quantization (4-bit).
    """

    name: str
    rank: int
    alpha: int
    dropout: float
    use_qlora: bool = False
    qlora_bits: int = 4
    qlora_type: str = "nf4"
    qlora_double_quant: bool = True

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict view of the preset."""
        return asdict(self)

    def settings(self) -> dict[str, Any]:
        """The ``TrainerConfig`` fields this preset sets, with their values."""
        values = {
            "lora_rank": self.rank,
            "lora_alpha": self.alpha,
            "lora_dropout": self.dropout,
            "use_qlora": self.use_qlora,
        }
        if self.use_qlora:
            values.update(
                qlora_bits=self.qlora_bits, qlora_type=self.qlora_type, qlora_double_quant=self.qlora_double_quant
            )
        return values


PRESETS: dict[str, LoraPreset] = {
    "minimal": LoraPreset("minimal", 4, 8, 0.05),
    "standard": LoraPreset("standard", 16, 32, 0.05),
    "high_capacity": LoraPreset("high_capacity", 64, 128, 0.1),
    "qlora_4bit": LoraPreset("qlora_4bit", 16, 32, 0.05, use_qlora=True, qlora_bits=4),
    "qlora_8bit": LoraPreset("qlora_8bit", 16, 32, 0.05, use_qlora=True, qlora_bits=8),
}


def get_lora_preset(name: str) -> LoraPreset:
    """The preset called ``name`` (minimal, standard, high_capacity, qlora_4bit, qlora_8bit).

    Raises:
        ConfigError: Unknown name.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"lora_preset: unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


@dataclass
class TrainerConfig(Section):
    """Configuration of :class:`deepsynth.training.deepsynth_lora_trainer.DeepSynthLoRATrainer`."""

    _section = "train"

    # --- model ---
    model_name: str = knob(
        "deepseek-ai/DeepSeek-OCR",
        "deepseek-ai/DeepSeek-OCR, deepseek-ai/DeepSeek-OCR-2, tiny, or a local model directory",
    )
    model_revision: str | None = knob(None, "hub commit to pin the weights to (hub names only)")
    model_dtype: Literal["float32", "bfloat16", "float16"] = knob("float32", "dtype of the unquantized weights")
    device: Literal["auto", "cpu", "cuda"] = knob("auto", "where to train; auto picks CUDA when present")
    deepsynth_home: str | None = knob(
        None,
        "cache root for the tiny profile and features (default: the DeepSynth home: $DEEPSYNTH_HOME, else the "
        "nearest .deepsynth/ up the tree, else ~/.local/share/deepsynth)",
    )
    output_dir: str = knob("./trained_model", "where the final adapter (or model) is written")
    # --- LoRA ---
    use_lora: bool = knob(True, "train LoRA adapters on the decoder (false: fine-tune the whole decoder)")
    lora_preset: str | None = knob(
        None,
        "minimal, standard, high_capacity, qlora_4bit or qlora_8bit: sets the lora_*/qlora_* values (setting one of "
        "them to something else too is an error)",
    )
    lora_rank: int = knob(16, "LoRA rank r")
    lora_alpha: int = knob(32, "LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = knob(0.05, "dropout on the LoRA input")
    lora_target_modules: list[str] = knob(
        list(DEFAULT_TARGETS), "decoder projections that get adapters (the vision tower never does)"
    )
    lora_target_experts: bool = knob(False, "also adapt the fused MoE expert weights (peft target_parameters)")
    train_projector: bool = knob(False, "train the vision→decoder projector (and newline/separator embeddings)")
    # --- QLoRA ---
    use_qlora: bool = knob(False, "quantize the decoder with bitsandbytes and train LoRA on top")
    qlora_bits: Literal[4, 8] = knob(4, "bits per quantized decoder weight: 4 or 8")
    qlora_type: Literal["nf4", "fp4"] = knob("nf4", "4-bit data type")
    qlora_double_quant: bool = knob(True, "quantize the 4-bit quantization constants too")
    # --- text encoder ---
    use_text_encoder: bool = knob(
        False, "encode the instruction with a text encoder and feed it as one extra decoder input"
    )
    text_encoder_type: Literal["bert", "qwen3"] = knob("qwen3", "bert (all-MiniLM-L6-v2, bundled) or qwen3")
    text_encoder_model: str | None = knob(
        None, "encoder weights: a local directory (default: the bundled MiniLM for bert)"
    )
    text_encoder_trainable: bool = knob(True, "fine-tune the text encoder")
    use_text_projection: bool = knob(False, "learn a projection from the encoder width to the decoder width")
    instruction_prompt: str = knob("Summarize this text:", "instruction used when a document has none")
    # --- data ---
    train_split: str = knob("train", "split of the rendered dataset to train on")
    mode: str | None = knob(None, "train only on pages rendered in this mode (default: all)")
    max_length: int = knob(2048, "longest sequence (image positions + prompt + summary)")
    max_summary_tokens: int = knob(512, "longest target summary in tokens")
    max_instruction_tokens: int = knob(64, "longest instruction fed to the text encoder")
    feature_cache: bool = knob(True, "compute the frozen vision encoder once per page image and reuse it across epochs")
    feature_cache_dir: str | None = knob(None, "also keep cached features on disk here (safetensors)")
    # --- optimisation ---
    batch_size: int = knob(8, "examples per step and process")
    gradient_accumulation_steps: int = knob(1, "micro-batches per optimizer step")
    num_epochs: int = knob(3, "passes over the training split")
    max_steps: int = knob(-1, "stop after this many optimizer steps (-1: run all epochs)")
    optimizer: OptimizerConfig | Literal["adamw", "adamw_8bit"] = knob(
        default_factory=lambda: OptimizerConfig(), help="optimizer section (name, learning_rate, ...), or just its name"
    )
    # Shorthands for the optimizer section's settings (read and written through it, see the end of the module).
    learning_rate: InitVar[float | None] = None
    weight_decay: InitVar[float | None] = None
    warmup_steps: InitVar[int | None] = None
    lr_scheduler: InitVar[Literal["linear", "cosine", "constant"] | None] = None
    max_grad_norm: InitVar[float | None] = None
    mixed_precision: Literal["no", "bf16", "fp16"] = knob("no", "autocast dtype for forward passes")
    gradient_checkpointing: bool = knob(False, "recompute decoder activations in backward (always on with QLoRA)")
    seed: int = knob(42, "seed of initialisation, data order and dropout")
    # --- data parallelism ---
    num_processes: int = knob(
        1,
        "data-parallel training processes on this machine (>1: launched with torchrun, "
        "gloo on CPU, NCCL on GPUs; 0: one per visible GPU); global batch = batch_size x this",
    )
    distributed_timeout_s: int = knob(
        600, "seconds a rank waits in a collective before the run fails (a dead or hung rank)"
    )
    # --- several adapters in one run (docs/multi-adapter.md) ---
    adapters: list[dict[str, Any]] = knob(
        [],
        "named adapters trained together on the one base: each {name, data (optional selector), any per-adapter "
        "key (lora_*, optimizer settings, num_epochs, seed, ...)}; [] = one adapter",
    )
    sweep: dict[str, list[Any]] = knob(
        {},
        "key -> list of values; their product expands into adapters named after their values (crossed with adapters)",
    )
    adapters_mode: Literal["sequential", "mixed"] = knob(
        "sequential",
        "sequential: each adapter's steps in turn (equal to training it alone); mixed: rows of every adapter in one "
        "forward, each through its own LoRA weights",
    )
    # --- checkpoints and logging ---
    save_steps: int = knob(0, "write an atomic checkpoint every N optimizer steps (0: none)")
    save_total_limit: int = knob(2, "checkpoints kept (oldest deleted first)")
    state_dir: str | None = knob(
        None,
        "folder whose checkpoints/ holds resumable state (null: output_dir; the pipeline "
        "uses <home>/training-state/<run key> so a retried run resumes)",
    )
    resume_from_checkpoint: str | None = knob(None, "'latest' or a checkpoint directory to resume from")
    resume_force: bool = knob(
        False, "resume even if the config or dataset changed since the checkpoint (otherwise refused)"
    )
    logging_steps: int = knob(1, "record the loss every N optimizer steps")
    progress_bar: bool = knob(True, "show a tqdm bar with loss, lr and samples/s")
    peak_tflops: float | None = knob(
        None, "accelerator peak TFLOP/s for the MFU estimate (default: a lookup or CPU estimate)"
    )

    def __post_init__(self, *shorthands: Any) -> None:
        self._take_optimizer_settings(dict(zip(OPTIMIZER_SHORTHANDS, shorthands)))
        if self.lora_preset is not None:
            self._apply_preset(get_lora_preset(self.lora_preset))
        positive = (
            "lora_rank",
            "lora_alpha",
            "batch_size",
            "gradient_accumulation_steps",
            "num_epochs",
            "max_length",
            "max_summary_tokens",
            "max_instruction_tokens",
            "logging_steps",
            "save_total_limit",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.use_qlora and not self.use_lora:
            raise ValueError("use_qlora needs use_lora: a quantized decoder can only be trained through adapters")
        if self.lora_target_experts and self.lora_dropout:
            raise ValueError(
                "lora_target_experts needs lora_dropout: 0 (peft adapts fused expert weights without dropout)"
            )
        if not self.lora_target_modules and not self.lora_target_experts:
            raise ValueError("lora_target_modules is empty")
        if self.save_steps < 0:
            raise ValueError("save_steps must not be negative")
        if self.num_processes < 0:
            raise ValueError(f"num_processes must be 0 (one per GPU) or more, got {self.num_processes}")
        if self.distributed_timeout_s < 1:
            raise ValueError(f"distributed_timeout_s must be at least 1, got {self.distributed_timeout_s}")
        check_multi_adapter(self, expand_variants(self))

    def _take_optimizer_settings(self, shorthands: dict[str, Any]) -> None:
        """Make ``optimizer`` a section of its own and move the top-level shorthands into it.

        A shorthand that contradicts the same setting of a section written out as a mapping (both in
        one YAML or JSON config) is an error; over a section object (``dataclasses.replace``, code)
        the shorthand given wins.
        """
        written_out = isinstance(self.optimizer, Mapping)
        if isinstance(self.optimizer, str):
            self.optimizer = OptimizerConfig(name=self.optimizer)
        elif written_out:
            self.optimizer = from_dict(OptimizerConfig, self.optimizer, prefix="optimizer")
        else:
            self.optimizer = replace(self.optimizer)  # never shared with the config it was copied from
        default = OptimizerConfig()
        for name, value in shorthands.items():
            if value is None or isinstance(value, property):  # not given
                continue
            current = getattr(self.optimizer, name)
            if written_out and current != getattr(default, name) and current != value:
                raise ValueError(f"{name}={value!r} and optimizer.{name}={current!r} were both given: drop one of them")
            setattr(self.optimizer, name, value)
        self.optimizer.__post_init__()

    def _apply_preset(self, preset: LoraPreset) -> None:
        """Write the preset's values; a field already set to another non-default value conflicts."""
        defaults = {f.name: f.default for f in fields(self)}
        for name, value in preset.settings().items():
            current = getattr(self, name)
            if current != defaults[name] and current != value:
                raise ValueError(
                    f"lora_preset {preset.name!r} sets {name}={value!r}, but {name}={current!r} was "
                    f"also given: drop one of them"
                )
            setattr(self, name, value)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> TrainerConfig:
        """Build from a plain dict (YAML/JSON); unknown keys and bad values raise ConfigError."""
        return from_dict(cls, data, source=source)

    @classmethod
    def from_json(cls, path_or_text: str | os.PathLike) -> TrainerConfig:
        """Build from a JSON file path or a JSON string (a training job configuration)."""
        return from_json(cls, path_or_text, "training config")

    def variants(self) -> list[Any]:
        """The adapters this run trains (:class:`deepsynth.training.variants.Variant`); ``[]``: one plain adapter."""
        return expand_variants(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (round-trips through :meth:`from_dict`)."""
        return to_dict(self)


def _optimizer_shorthand(name: str) -> property:
    def get(config: TrainerConfig) -> Any:
        return getattr(config.optimizer, name)

    def set_(config: TrainerConfig, value: Any) -> None:
        setattr(config.optimizer, name, value)

    return property(
        get,
        set_,
        doc=f"Shorthand for optimizer.{name}: one value, read and written through the "
        "optimizer section (null: not given)",
    )


# ``config.learning_rate`` reads and writes ``config.optimizer.learning_rate``; the dataclass __init__
# already took its default (None: "not given") from the InitVar.
for _name in OPTIMIZER_SHORTHANDS:
    setattr(TrainerConfig, _name, _optimizer_shorthand(_name))
