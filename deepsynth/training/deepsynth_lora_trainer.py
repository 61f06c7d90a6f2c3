"""DeepSynthLoRATrainer: LoRA / QLoRA fine-tuning of DeepSeek-OCR's decoder on rendered documents.

``metrics, checkpoints = DeepSynthLoRATrainer(config).train(dataset)`` trains on the rendered
dataset's training split and writes the adapter (safetensors + adapter_config.json), tokenizer,
trainer config and, when used, the text encoder into ``config.output_dir``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from deepsynth import env
from deepsynth.adapter_files import PROJECTOR_WEIGHTS, TRAINER_CONFIG, TRAINING_METRICS
from deepsynth.adapter_layout import save_adapter
from deepsynth.data.rendered import MANIFEST, RenderedDataset
from deepsynth.errors import ConfigError, DeepSynthError
from deepsynth.models.batching import PreparedDocument, build_batch, page_features, prepare_document, supervised_loss
from deepsynth.models.dtypes import DTYPES
from deepsynth.models.feature_cache import FeatureCache
from deepsynth.models.loading import deepsynth_home
from deepsynth.models.preprocessing import view_spec
from deepsynth.models.text_encoders import InstructionEncoder, build_text_encoder
from deepsynth.models.vision import ocr_core, unwrap_model, vision_fingerprint
from deepsynth.progress import progress_bar
from deepsynth.training import distributed as dist_utils
from deepsynth.training.checkpointing import list_checkpoints, load_checkpoint, resolve_checkpoint, save_checkpoint
from deepsynth.training.config import TrainerConfig
from deepsynth.training.fingerprints import config_fingerprint, dataset_fingerprint
from deepsynth.training.metrics import decoder_training_flops, peak_flops, peak_rss_mb, system_info
from deepsynth.training.model_setup import build_training_model, count_parameters
from deepsynth.training.plan import Progress, lr_lambda, step_groups, step_target_counts
from deepsynth.training.signals import StopOnSignal, TrainingInterrupted

logger = logging.getLogger(__name__)


class TrainingDivergedError(DeepSynthError):
    """The loss or the trained weights became NaN or infinite."""


def resolve_dataset(dataset: Any, home: str | None = None) -> RenderedDataset:
    """Accept a :class:`RenderedDataset`, a path to one, or the name of one under ``<home>/datasets``."""
    if isinstance(dataset, RenderedDataset):
        return dataset
    path = Path(str(dataset))
    if (path / MANIFEST).is_file():
        return RenderedDataset(path)
    named = deepsynth_home(home) / "datasets" / str(dataset)
    if (named / MANIFEST).is_file():
        return RenderedDataset(named)
    raise ConfigError(
        f"dataset: {dataset!r} is neither a rendered dataset directory nor a dataset under {named.parent}"
    )


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda requested but no CUDA device is available")
    if name == "cuda":
        return torch.device("cuda", env.local_rank())
    return torch.device(name)


def predicted_positions(doc: PreparedDocument) -> int:
    """Positions of a document whose next token is a training target (its ``num_targets`` in a batch)."""
    return sum(1 for label in doc.example.labels[1:] if label != -100)


class DeepSynthLoRATrainer:
    """Fine-tunes DeepSeek-OCR's decoder (LoRA, QLoRA or full) to summarise rendered documents.

    Args:
        config: A :class:`TrainerConfig` or a dict accepted by :meth:`TrainerConfig.from_dict`.
    """

    def __init__(self, config: TrainerConfig | Mapping[str, Any], on_step: Callable[[int], None] | None = None):
        """Set up a trainer; nothing is loaded until :meth:`train`.

        Args:
            config: The run's settings (a :class:`TrainerConfig` or its dict form).
            on_step: Called with the global step number after every optimizer step (e.g. a profiler's ``step``).
        """
        self.config = config if isinstance(config, TrainerConfig) else TrainerConfig.from_dict(config)
        self._on_step = on_step
        self.model: nn.Module | None = None
        self.tokenizer = None
        self.text_encoder: InstructionEncoder | None = None
        self.source = None
        self.feature_cache: FeatureCache | None = None
        self._state_dir = self.config.state_dir or self.config.output_dir
        self._stop: StopOnSignal | None = None  # installed for the duration of train()
        self._text_cache: dict[str, torch.Tensor] = {}  # a frozen text encoder's output per instruction
        self.trained_instruction = self.config.instruction_prompt  # the training documents' own, once prepared
        self._fingerprint: dict[str, Any] | None = None  # config and dataset identity, stored in checkpoints
        self._flops_per_position = (0.0, 0.0)  # decoder training FLOPs per input and per predicted position
        self._model_flops = 0.0  # decoder training FLOPs this process has run
        self._ctx = dist_utils.DistContext()  # this process's place among the ranks, set by train()
        self._adapter_name = "default"  # the peft adapter being trained
        self._selector = None  # a DataSelector: train on part of the split (one adapter of several)

    # ----- public API -----
    def train(self, dataset: Any) -> tuple[dict[str, Any], list[str]]:
        """Train on ``dataset``'s training split and write the adapter to ``config.output_dir``.

        Args:
            dataset: A :class:`RenderedDataset`, its directory, or a dataset name under ``<home>/datasets``.

        Returns:
            ``(metrics, checkpoints)``: loss curve, throughput, MFU estimate, parameter counts, the adapter
            directory (``metrics["adapter_dir"]``); and the checkpoint directories kept on disk.

        Raises:
            TrainingDivergedError: The loss or the weights became non-finite (nothing is written).
        """
        device = resolve_device(self.config.device)
        ctx = dist_utils.init_distributed(device.type, self.config.distributed_timeout_s)
        self._stop = StopOnSignal().install()  # SIGTERM: checkpoint at the next step boundary, then TrainingInterrupted
        try:
            return self._train(resolve_dataset(dataset, self.config.deepsynth_home), device, ctx)
        finally:
            self._stop.restore()
            dist_utils.shutdown(ctx)

    # ----- setup -----
    def _setup(self, device: torch.device) -> None:
        cfg, ctx = self.config, self._ctx
        self.model, self.tokenizer, self.source = build_training_model(cfg, device, self._adapter_name)
        if cfg.use_text_encoder:
            hidden = ocr_core(self.model).config.text_config.hidden_size
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed + 1)
                self.text_encoder = build_text_encoder(
                    cfg.text_encoder_type,
                    cfg.text_encoder_model,
                    hidden,
                    use_projection=cfg.use_text_projection,
                    trainable=cfg.text_encoder_trainable,
                    max_tokens=cfg.max_instruction_tokens,
                ).to(device)
        identity = vision_fingerprint(self.model, self.source.identity)
        cache_dir = cfg.feature_cache_dir
        if cache_dir and ctx.enabled:  # ranks meet the same pages across epochs: none writes another's entries
            cache_dir = str(Path(cache_dir) / f"rank-{ctx.rank}-of-{ctx.world_size}")
        self.feature_cache = FeatureCache(identity, cache_dir, enabled=cfg.feature_cache)

    def _trainable(self) -> list[tuple[str, nn.Parameter]]:
        params = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if self.text_encoder is not None:
            params += [(f"text_encoder.{n}", p) for n, p in self.text_encoder.named_parameters() if p.requires_grad]
        return params

    def _prepare(self, data: RenderedDataset) -> list[PreparedDocument]:
        cfg = self.config
        sam_size = ocr_core(self.model).config.vision_config.sam_config.image_size
        docs = []
        for doc in data.iter_documents(split=cfg.train_split, mode=cfg.mode):
            if self._selector is not None and not self._selector.matches(doc):
                continue
            docs.append(
                prepare_document(
                    doc,
                    view_spec(doc.mode, sam_size),
                    self.tokenizer,
                    default_instruction=cfg.instruction_prompt,
                    max_length=cfg.max_length,
                    max_summary_tokens=cfg.max_summary_tokens,
                    text_slot=self.text_encoder is not None,
                )
            )
        if not docs:
            raise DeepSynthError(
                f"dataset {data.path}: no documents in split {cfg.train_split!r}"
                + (f" and mode {cfg.mode!r}" if cfg.mode else "")
                + (f" where {self._selector.describe()}" if self._selector is not None else "")
            )
        self.trained_instruction = Counter(d.instruction for d in docs).most_common(1)[0][0]
        return docs

    def _text_embeddings(self, items: list[PreparedDocument]) -> torch.Tensor | None:
        enc = self.text_encoder
        if enc is None:
            return None
        texts = [it.instruction for it in items]
        if self.config.text_encoder_trainable:
            return enc(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:  # a frozen encoder's pooled output is computed once per distinct instruction
            with torch.no_grad():
                for text, vec in zip(missing, enc.encode(missing)):
                    self._text_cache[text] = vec
        return enc.project(torch.stack([self._text_cache[t] for t in texts]))

    # ----- the recipe -----
    def _train(self, data: RenderedDataset, device: torch.device, ctx: dist_utils.DistContext):
        torch.manual_seed(self.config.seed + ctx.rank)
        self._ctx = ctx
        self._setup(device)
        return self._train_adapter(data, device, ctx)

    def _train_adapter(self, data: RenderedDataset, device: torch.device, ctx: dist_utils.DistContext):
        """Train the model's active adapter under ``self.config`` and write it; ``(metrics, checkpoints)``."""
        docs = self._prepare(data)
        named = self._trainable_parameters(ctx)
        optimizer, scheduler, total_steps = self._optimizer_and_schedule([p for _, p in named], len(docs), ctx)
        # Data order and dropout draw from a stream that starts at the seed whatever setup consumed, so an
        # adapter trained beside others (deepsynth.training.multi_adapter) trains exactly as it would alone.
        torch.manual_seed(self.config.seed + ctx.rank)
        self._model_flops = 0.0
        state, resumed_from = self._resume(data, named, optimizer, scheduler)
        progress = self._loop(docs, named, optimizer, scheduler, state, total_steps, device, ctx)
        self._check_finite(named)
        metrics = self._metrics(progress, state, resumed_from, device, ctx)
        if ctx.is_main:
            self._save_output(metrics, device)
        dist_utils.barrier(ctx)
        return metrics, [str(p) for p in list_checkpoints(self._state_dir)]

    def _trainable_parameters(self, ctx: dist_utils.DistContext) -> list[tuple[str, nn.Parameter]]:
        """The trained parameters (model and text encoder), identical on every rank."""
        named = self._trainable()
        if not named:
            raise ConfigError("nothing to train: enable use_lora, train_projector or a trainable text encoder")
        dist_utils.broadcast_parameters(ctx, [p for _, p in named])
        return named

    def _optimizer_and_schedule(self, params: list[nn.Parameter], n_docs: int, ctx: dist_utils.DistContext):
        """``(optimizer, scheduler, total optimizer steps)`` for this run's data and world size."""
        cfg = self.config
        total_steps = len(step_groups(n_docs, cfg, 0, ctx)) * cfg.num_epochs  # every epoch has as many steps
        if cfg.max_steps > 0:
            total_steps = min(total_steps, cfg.max_steps)
        optimizer = self._optimizer(params)
        schedule = lr_lambda(cfg.optimizer.lr_scheduler, cfg.optimizer.warmup_steps, total_steps)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), total_steps

    def _resume(self, data: RenderedDataset, named, optimizer, scheduler) -> tuple[dict[str, Any], int]:
        """The loop state, fresh or from the checkpoint ``resume_from_checkpoint`` names; and the step resumed at."""
        cfg = self.config
        state: dict[str, Any] = {
            "epoch": 0,
            "step_in_epoch": 0,
            "loss_history": [],
            "samples_seen": 0,
            "tokens_seen": 0,
            "global_step": 0,
        }
        self._fingerprint = {"config": config_fingerprint(cfg), "dataset": dataset_fingerprint(data.path)}
        resume = resolve_checkpoint(self._state_dir, cfg.resume_from_checkpoint, self._fingerprint, cfg.resume_force)
        if resume is None:
            return state, 0
        tensors, state = load_checkpoint(resume, optimizer, scheduler)
        with torch.no_grad():
            for name, p in named:
                p.copy_(tensors[name])
        logger.info("resumed from %s at step %d", resume, state["global_step"])
        return state, state["global_step"]

    def _loop(self, docs, named, optimizer, scheduler, state, total_steps, device, ctx) -> Progress:
        """Run the optimizer steps left, epoch by epoch; SIGTERM stops at a step boundary with a checkpoint."""
        cfg = self.config
        params = [p for _, p in named]
        self._flops_per_position = decoder_training_flops(self.model)
        self.model.train()
        ocr_core(self.model).vision_tower.eval()
        if self.text_encoder is not None and not cfg.text_encoder_trainable:
            self.text_encoder.encoder.eval()
        autocast = (
            torch.autocast(device.type, dtype=DTYPES["bfloat16" if cfg.mixed_precision == "bf16" else "float16"])
            if cfg.mixed_precision != "no"
            else contextlib.nullcontext()
        )
        progress = Progress(global_step=state["global_step"])
        bar = progress_bar(
            cfg.progress_bar and ctx.is_main,
            total=total_steps,
            initial=progress.global_step,
            desc="train",
            unit="step",
            dynamic_ncols=True,
        )
        epoch = state["epoch"]
        while progress.global_step < total_steps and epoch < cfg.num_epochs:
            groups = step_groups(len(docs), cfg, epoch, ctx)
            step_targets = step_target_counts([predicted_positions(d) for d in docs], cfg, epoch, ctx.world_size)
            first = state["step_in_epoch"] if epoch == state["epoch"] else 0
            epoch_start = progress.epoch_started(self._model_flops * ctx.world_size)
            for step_in_epoch in range(first, len(groups)):
                # Forward and backward over the step's micro-batches (loss averaged over the ranks).
                loss, samples, tokens = self._step(
                    groups[step_in_epoch], step_targets[step_in_epoch], docs, device, autocast, ctx, params
                )
                # A non-finite loss stops the run before the optimizer touches the weights.
                if not math.isfinite(loss):
                    raise TrainingDivergedError(
                        f"loss became {loss} at step {progress.global_step + 1} (epoch {epoch}); lower learning_rate "
                        f"(now {cfg.optimizer.learning_rate}) or check the data; no adapter was written"
                    )
                # Clip, update, advance the schedule.
                if cfg.optimizer.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(params, cfg.optimizer.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                # Count and record.
                lr = scheduler.get_last_lr()[0]
                progress.record_step(samples, tokens)
                state.update(
                    global_step=progress.global_step,
                    epoch=epoch,
                    step_in_epoch=step_in_epoch + 1,
                    samples_seen=state["samples_seen"] + samples,
                    tokens_seen=state["tokens_seen"] + tokens,
                )
                if progress.global_step % cfg.logging_steps == 0 or progress.global_step == total_steps:
                    state["loss_history"].append([progress.global_step, loss, lr])
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", samples_s=f"{progress.samples_per_second():.2f}")
                # Periodic checkpoint; SIGTERM: checkpoint now and stop.
                unfinished = progress.global_step < total_steps
                if cfg.save_steps and progress.global_step % cfg.save_steps == 0 and unfinished:
                    self._checkpoint(progress.global_step, named, optimizer, scheduler, state, ctx)
                if unfinished and dist_utils.mean_scalar(ctx, float(bool(self._stop.requested))) > 0:
                    self._checkpoint(progress.global_step, named, optimizer, scheduler, state, ctx)
                    raise TrainingInterrupted(
                        f"SIGTERM: stopped at step {progress.global_step}/{total_steps} with a checkpoint in "
                        f"{self._state_dir}/checkpoints; rerun with resume_from_checkpoint: latest",
                        str((list_checkpoints(self._state_dir) or [None])[-1]),
                    )
                if self._on_step is not None:
                    self._on_step(progress.global_step)
                if not unfinished:
                    break
            progress.epoch_finished(
                epoch, state["step_in_epoch"] - first, epoch_start, self._model_flops * ctx.world_size
            )
            epoch += 1
            state["epoch"], state["step_in_epoch"] = epoch, 0
        bar.close()
        progress.runtime = time.perf_counter() - progress.start
        return progress

    def _metrics(self, progress: Progress, state, resumed_from: int, device, ctx) -> dict[str, Any]:
        """Loss curve, throughput, MFU, parameter counts and cache figures of the run."""
        cfg = self.config
        runtime = max(progress.runtime, 1e-9)
        peak, peak_source = peak_flops(device, cfg.peak_tflops)
        model_flops_per_s = dist_utils.mean_scalar(ctx, self._model_flops) * ctx.world_size / runtime
        trainable, total = count_parameters(self.model, self.text_encoder)
        history = state["loss_history"]
        return {
            "global_step": progress.global_step,
            "epochs": cfg.num_epochs,
            "train_runtime_s": progress.runtime,
            "train_samples": state["samples_seen"],
            "samples_per_second": progress.samples / runtime,
            "tokens_per_second": progress.tokens / runtime,
            "model_tflops_per_second": model_flops_per_s / 1e12,
            "mfu": model_flops_per_s / peak if peak else None,
            "mfu_peak_source": peak_source,
            "initial_loss": history[0][1] if history else None,
            "final_loss": history[-1][1] if history else None,
            "loss_curve": history,
            "trainable_params": trainable,
            "total_params": total,
            "resumed_from_step": resumed_from,
            "epochs_detail": progress.epochs,
            "world_size": ctx.world_size,
            "device": str(device),
            "rank": ctx.rank,
            "peak_rss_mb": peak_rss_mb(),
            "adapter_dir": str(Path(cfg.output_dir)),
            **self.feature_cache.stats(),
        }

    def _optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.optimizer.name == "adamw_8bit":
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit(params, lr=cfg.optimizer.learning_rate, weight_decay=cfg.optimizer.weight_decay)
        # On CUDA one fused kernel updates every parameter (no per-tensor launches or step-count reads).
        fused = all(
            p.device.type == "cuda" and p.dtype in (torch.float32, torch.bfloat16, torch.float16) for p in params
        )
        return torch.optim.AdamW(
            params, lr=cfg.optimizer.learning_rate, weight_decay=cfg.optimizer.weight_decay, fused=fused or None
        )

    def _step(self, group, step_targets, docs, device, autocast, ctx, params) -> tuple[float, int, int]:
        """Forward/backward over one optimizer step's micro-batches; returns the (all-rank) mean loss.

        Each micro-batch's mean loss is weighted by its share of the step's predicted positions over
        all ranks (``step_targets``): the step's loss is the token mean over the global batch, however
        it is split into micro-batches and processes.
        """
        n_examples = sum(len(m) for m in group)
        local_loss, tokens = torch.zeros((), device=device), 0
        for indices in group:
            items = [docs[i] for i in indices]
            feats = [page_features(self.model, it, self.feature_cache) for it in items]
            with autocast:
                batch = build_batch(
                    self.model, items, feats, self._text_embeddings(items), self.tokenizer.pad_token_id, device
                )
                loss = supervised_loss(self.model, batch)
            weight = batch.num_targets * ctx.world_size / max(1, step_targets)  # gradients are averaged over ranks
            (loss * weight).backward()  # a non-finite loss stops the run before the optimizer steps
            local_loss += loss.detach().float() * weight
            tokens += batch.num_tokens
            body, head = self._flops_per_position
            self._model_flops += body * batch.num_tokens + head * batch.num_targets
        dist_utils.average_gradients(ctx, params)
        # NaN propagates through the mean, so every rank stops together.
        return (
            dist_utils.mean_scalar(ctx, float(local_loss)),
            n_examples * ctx.world_size,
            int(dist_utils.mean_scalar(ctx, tokens) * ctx.world_size),
        )

    def _checkpoint(self, step, named, optimizer, scheduler, state, ctx) -> None:
        if ctx.is_main:
            self._check_finite(named)
            tensors = {n: p.detach() for n, p in named}
            save_checkpoint(
                self._state_dir,
                step,
                tensors,
                optimizer,
                scheduler,
                state,
                self.config.save_total_limit,
                fingerprint=getattr(self, "_fingerprint", None),
            )
        dist_utils.barrier(ctx)

    @staticmethod
    def _check_finite(named) -> None:
        bad = [n for n, p in named if not torch.isfinite(p.detach()).all()]
        if bad:
            raise TrainingDivergedError(
                f"non-finite trained weights in {bad[:3]} (+{max(0, len(bad) - 3)} more); nothing written"
            )

    def _save_adapter_weights(self, out: Path) -> None:
        """Write the trained LoRA adapter (``adapter_model.safetensors`` + ``adapter_config.json``)."""
        save_adapter(self.model, out)

    def _save_output(self, metrics: dict[str, Any], device: torch.device) -> None:
        cfg = self.config
        out = Path(cfg.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        if cfg.use_lora:
            self._save_adapter_weights(out)
        else:
            unwrap_model(self.model).save_pretrained(out, safe_serialization=True)
        if cfg.train_projector:
            core = ocr_core(self.model)
            tensors = {f"multi_modal_projector.{k}": v for k, v in core.multi_modal_projector.state_dict().items()}
            tensors.update(image_newline=core.image_newline, view_separator=core.view_separator)
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(out / PROJECTOR_WEIGHTS))
        if self.text_encoder is not None:
            self.text_encoder.save(out, include_weights=cfg.text_encoder_trainable)
        self.tokenizer.save_pretrained(out)
        # the instruction the documents carried (ingest's column), which inference must reuse
        recorded = {**cfg.to_dict(), "instruction_prompt": self.trained_instruction}
        (out / TRAINER_CONFIG).write_text(json.dumps(recorded, indent=2, sort_keys=True))
        (out / TRAINING_METRICS).write_text(
            json.dumps({**metrics, "system": system_info(device)}, indent=2, default=str)
        )
