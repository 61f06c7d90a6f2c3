"""Several LoRA adapters trained in one run on one base model (``train.adapters`` / ``train.sweep``).

The base model is loaded once and every variant is attached to it as a peft named adapter; the
frozen encoder's page features go through one :class:`~deepsynth.models.feature_cache.FeatureCache`,
so each page is encoded once for all adapters. Each adapter keeps its own optimizer, schedule, data
order (its seed) and checkpoints (``<state_dir>/<name>/checkpoints``), and is written to
``<output_dir>/<name>/`` exactly as a one-adapter run writes its adapter; ``<output_dir>/adapters.json``
lists them (:func:`deepsynth.training.adapter_set.read_adapter_index`).

Two modes (``train.adapters_mode``):

- ``sequential``: each adapter's steps in turn through the one-adapter recipe. Data order and dropout
  start from the adapter's seed, so the saved tensors are bit-identical to training the adapter alone.
- ``mixed``: every optimizer step takes one step of each adapter, with their rows in one forward pass
  (each row through its own LoRA weights: peft's per-row ``adapter_names``, also during training)
  and each adapter's loss normalised over its own targets. With ``lora_dropout: 0`` the adapters
  equal the sequential ones within float rounding of the batched matmuls (tested); with dropout the
  masks are drawn from one stream, so they differ as two seeds would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from peft.tuners.lora import LoraLayer
from safetensors import safe_open
from safetensors.torch import save_file

from deepsynth.adapter_files import ADAPTER_WEIGHTS
from deepsynth.adapter_layout import ORIGINAL_LAYOUT_MODEL_TYPES, original_key
from deepsynth.data.rendered import RenderedDataset
from deepsynth.errors import ConfigError
from deepsynth.models.batching import HeadCrossEntropy, build_batch, fused_head_applies, page_features
from deepsynth.models.dtypes import DTYPES
from deepsynth.models.vision import ocr_core, unwrap_model
from deepsynth.training import distributed as dist_utils
from deepsynth.training.adapter_set import ADAPTER_INDEX
from deepsynth.training.checkpointing import list_checkpoints
from deepsynth.training.config import TrainerConfig
from deepsynth.training.deepsynth_lora_trainer import DeepSynthLoRATrainer, TrainingDivergedError, predicted_positions
from deepsynth.training.lora_config import build_lora_config
from deepsynth.training.metrics import peak_rss_mb
from deepsynth.training.plan import Progress, step_groups, step_target_counts
from deepsynth.training.signals import TrainingInterrupted
from deepsynth.training.variants import Variant, with_variant_paths

logger = logging.getLogger(__name__)


#: The index of a multi-adapter run's output folder.
def make_trainer(config: TrainerConfig, on_step: Callable[[int], None] | None = None) -> DeepSynthLoRATrainer:
    """A :class:`MultiAdapterTrainer` when ``config`` has adapters or a sweep, else the one-adapter trainer."""
    if config.adapters or config.sweep:
        return MultiAdapterTrainer(config, on_step)
    return DeepSynthLoRATrainer(config, on_step)


def save_named_adapter(model: Any, name: str, out: Path) -> None:
    """Write peft adapter ``name`` alone into ``out`` in the layout a one-adapter run writes.

    peft puts a non-default adapter into a subfolder named after it; the files are moved up and the
    keys renamed to DeepSeek-OCR's original decoder names (:mod:`deepsynth.adapter_layout`).
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".save-") as tmp:
        model.save_pretrained(tmp, selected_adapters=[name], safe_serialization=True)
        saved = Path(tmp) / name if name != "default" else Path(tmp)
        for item in saved.iterdir():
            if item.is_file():
                shutil.move(str(item), out / item.name)
    if getattr(getattr(model, "config", None), "model_type", None) not in ORIGINAL_LAYOUT_MODEL_TYPES:
        return
    path = out / ADAPTER_WEIGHTS
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {original_key(key): handle.get_tensor(key) for key in handle.keys()}
    save_file(tensors, str(path), metadata=metadata)


def _adapter_names_hook(_module, args, kwargs, adapter_names):
    kwargs["adapter_names"] = adapter_names
    return args, kwargs


@contextlib.contextmanager
def rows_through_adapters(model: torch.nn.Module, adapter_names: list[str]):
    """Within the block, row ``i`` of every LoRA layer's input goes through adapter ``adapter_names[i]``.

    peft offers this (``adapter_names=``) for inference only; its per-row forward is differentiable, so
    the same hooks serve mixed-batch training.
    """
    handles = [
        module.register_forward_pre_hook(partial(_adapter_names_hook, adapter_names=adapter_names), with_kwargs=True)
        for module in model.modules()
        if isinstance(module, LoraLayer)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _head_loss(model, hidden: torch.Tensor, labels: torch.Tensor, target_index: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy at ``target_index`` (flat ``[batch, length - 1]`` positions)."""
    width = hidden.shape[-1]
    selected = hidden[:, :-1].reshape(-1, width).index_select(0, target_index)
    targets = labels[:, 1:].reshape(-1).index_select(0, target_index)
    head = unwrap_model(model).lm_head
    if selected.shape[0] and fused_head_applies(head, selected):
        return HeadCrossEntropy.apply(selected, head.weight, targets, torch.is_grad_enabled())
    return torch.nn.functional.cross_entropy(head(selected).float(), targets)


class MultiAdapterTrainer(DeepSynthLoRATrainer):
    """Trains every variant of ``config.adapters``/``config.sweep`` on one base model, in one process group.

    Args:
        config: A :class:`TrainerConfig` (or its dict) with ``adapters`` and/or ``sweep``.
        on_step: Called with each adapter's global step after every optimizer step.
    """

    def __init__(self, config: TrainerConfig | Mapping[str, Any], on_step: Callable[[int], None] | None = None):
        super().__init__(config, on_step)
        self.run_config = self.config
        variants = self.run_config.variants()
        if not variants:
            raise ConfigError("train.adapters/train.sweep: a multi-adapter run needs at least one adapter")
        self.variants: list[Variant] = [
            Variant(
                v.name,
                with_variant_paths(v, self.run_config.output_dir, self.run_config.state_dir),
                v.overrides,
                v.data,
                v.key,
            )
            for v in variants
        ]

    # ----- the recipe -----
    def _train(self, data: RenderedDataset, device: torch.device, ctx: dist_utils.DistContext):
        self._ctx = ctx
        start = time.perf_counter()
        first = self.variants[0]
        self._use(first, activate=False)
        torch.manual_seed(first.config.seed + ctx.rank)
        self._setup(device)
        for variant in self.variants[1:]:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(variant.config.seed)  # the initialisation a one-adapter run of it gets
                self.model.add_adapter(variant.name, build_lora_config(variant.config))
        if self.run_config.adapters_mode == "mixed":
            per_adapter, checkpoints = self._train_mixed(data, device, ctx)
        else:
            per_adapter, checkpoints = {}, []
            for variant in self.variants:
                self._use(variant)
                per_adapter[variant.name], kept = self._train_adapter(data, device, ctx)
                checkpoints += kept
        self.config, self._selector = self.run_config, None
        metrics = self._summary(per_adapter, time.perf_counter() - start)
        if ctx.is_main:
            self._write_index(per_adapter)
        dist_utils.barrier(ctx)
        return metrics, checkpoints

    def _use(self, variant: Variant, activate: bool = True) -> None:
        """Train ``variant`` next: its config, checkpoint folder, data slice and (once attached) its adapter."""
        self.config, self._adapter_name, self._selector = variant.config, variant.name, variant.data
        self._state_dir = variant.config.state_dir or variant.config.output_dir
        if activate:
            self.model.set_adapter(variant.name)

    def _save_adapter_weights(self, out: Path) -> None:
        save_named_adapter(self.model, self._adapter_name, out)

    def _summary(self, per_adapter: dict[str, dict[str, Any]], seconds: float) -> dict[str, Any]:
        """The run's metrics: every adapter's, plus what they shared (one base, one feature cache)."""
        return {
            "adapters": per_adapter,
            "adapters_mode": self.run_config.adapters_mode,
            "adapter_dir": str(Path(self.run_config.output_dir)),
            "train_runtime_s": seconds,
            "tokens_per_second": sum(m["tokens_per_second"] * m["train_runtime_s"] for m in per_adapter.values())
            / max(seconds, 1e-9),
            "peak_rss_mb": peak_rss_mb(),
            "rank": self._ctx.rank,
            **self.feature_cache.stats(),
        }

    def _write_index(self, per_adapter: dict[str, dict[str, Any]]) -> None:
        entries = []
        for variant in self.variants:
            metrics = per_adapter[variant.name]
            entries.append(
                {
                    "name": variant.name,
                    "dir": variant.name,
                    "defined_by": variant.key,
                    "overrides": variant.overrides,
                    "data": variant.data.describe() if variant.data else None,
                    "final_loss": metrics.get("final_loss"),
                    "global_step": metrics.get("global_step"),
                }
            )
        index = {
            "format": 1,
            "mode": self.run_config.adapters_mode,
            "sweep": self.run_config.sweep,
            "adapters": entries,
        }
        out = Path(self.run_config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / ADAPTER_INDEX).write_text(json.dumps(index, indent=2, default=str))

    # ----- mixed batches -----
    def _train_mixed(self, data: RenderedDataset, device: torch.device, ctx: dist_utils.DistContext):
        """Every adapter's next step at once: their micro-batches joined row-wise into one forward."""
        lanes = []
        for variant in self.variants:
            self._use(variant)
            docs = self._prepare(data)
            named = self._trainable_parameters(ctx)
            optimizer, scheduler, total = self._optimizer_and_schedule([p for _, p in named], len(docs), ctx)
            lanes.append({"variant": variant, "docs": docs, "named": named, "optimizer": optimizer})
            lanes[-1].update(scheduler=scheduler, total=total)
        torch.manual_seed(self.run_config.seed + ctx.rank)
        for lane in lanes:
            self._use(lane["variant"])
            lane["state"], lane["resumed"] = self._resume(data, lane["named"], lane["optimizer"], lane["scheduler"])
            lane["fingerprint"] = self._fingerprint
            lane["plan"] = self._plan(lane, ctx)
            lane["progress"] = Progress(global_step=lane["state"]["global_step"])
        # every adapter trainable at once; rows pick their adapter through the hooks
        self.model.base_model.set_adapter([v.name for v in self.variants])
        self._flops_per_position = (0.0, 0.0)
        self.model.train()
        ocr_core(self.model).vision_tower.eval()
        autocast = (
            torch.autocast(
                device.type, dtype=DTYPES["bfloat16" if self.run_config.mixed_precision == "bf16" else "float16"]
            )
            if self.run_config.mixed_precision != "no"
            else contextlib.nullcontext()
        )
        for step in range(max(len(lane["plan"]) for lane in lanes)):
            active = [lane for lane in lanes if step < len(lane["plan"])]
            losses = self._mixed_step(active, step, device, autocast, ctx)
            for lane, (loss, samples, tokens) in zip(active, losses):
                self._apply_step(lane, step, loss, samples, tokens)
            unfinished = [lane for lane in lanes if step + 1 < len(lane["plan"])]
            save_steps = self.run_config.save_steps
            stop = dist_utils.mean_scalar(ctx, float(bool(self._stop.requested))) > 0
            for lane in unfinished:
                if stop or (save_steps and lane["progress"].global_step % save_steps == 0):
                    self._use(lane["variant"], activate=False)
                    self._fingerprint = lane["fingerprint"]
                    lane_step = lane["progress"].global_step
                    self._checkpoint(lane_step, lane["named"], lane["optimizer"], lane["scheduler"], lane["state"], ctx)
            if unfinished and stop:
                raise TrainingInterrupted(
                    f"SIGTERM: stopped with checkpoints of {len(unfinished)} adapters under "
                    f"{self.run_config.state_dir or self.run_config.output_dir}; "
                    "rerun with resume_from_checkpoint: latest",
                    None,
                )
        per_adapter, checkpoints = {}, []
        for lane in lanes:
            self._use(lane["variant"])
            self._check_finite(lane["named"])
            lane["progress"].runtime = time.perf_counter() - lane["progress"].start
            metrics = self._metrics(lane["progress"], lane["state"], lane["resumed"], device, ctx)
            if ctx.is_main:
                self._save_output(metrics, device)
            per_adapter[lane["variant"].name] = metrics
            checkpoints += [str(p) for p in list_checkpoints(self._state_dir)]
        return per_adapter, checkpoints

    def _plan(self, lane: dict[str, Any], ctx: dist_utils.DistContext) -> list[tuple[int, int, list, int]]:
        """The optimizer steps this adapter has left: ``(epoch, step_in_epoch, micro-batches, step targets)``."""
        cfg, docs, state = lane["variant"].config, lane["docs"], lane["state"]
        plan = []
        targets = [predicted_positions(d) for d in docs]
        for epoch in range(cfg.num_epochs):
            groups = step_groups(len(docs), cfg, epoch, ctx)
            counts = step_target_counts(targets, cfg, epoch, ctx.world_size)
            plan += [(epoch, i, groups[i], counts[i]) for i in range(len(groups))]
        plan = plan[: lane["total"]]
        return plan[state["global_step"] :]

    def _mixed_step(self, lanes, step, device, autocast, ctx) -> list[tuple[float, int, int]]:
        """Forward and backward of one joint step; per adapter ``(mean loss, samples, tokens)``."""
        results = [[torch.zeros((), device=device), 0, 0] for _ in lanes]
        micro_count = max(len(lane["plan"][step][2]) for lane in lanes)
        for m in range(micro_count):
            items, names, spans = [], [], []
            for k, lane in enumerate(lanes):
                group = lane["plan"][step][2]
                if m >= len(group):
                    continue
                chosen = [lane["docs"][i] for i in group[m]]
                spans.append((k, len(items), len(items) + len(chosen)))
                items += chosen
                names += [lane["variant"].name] * len(chosen)
            feats = [page_features(self.model, it, self.feature_cache) for it in items]
            # The routing hooks stay on through backward: activation checkpointing reruns the layers there.
            with rows_through_adapters(self.model, names):
                total = self._mixed_loss(lanes, step, items, feats, spans, results, device, autocast, ctx)
                total.backward()
        out = []
        for lane, (loss, samples, tokens) in zip(lanes, results):
            dist_utils.average_gradients(ctx, [p for _, p in lane["named"]])
            out.append(
                (
                    dist_utils.mean_scalar(ctx, float(loss)),
                    samples * ctx.world_size,
                    int(dist_utils.mean_scalar(ctx, tokens) * ctx.world_size),
                )
            )
        return out

    def _mixed_loss(self, lanes, step, items, feats, spans, results, device, autocast, ctx) -> torch.Tensor:
        """Sum over adapters of each one's mean loss on its rows, weighted by its share of its step's targets."""
        with autocast:
            batch = build_batch(self.model, items, feats, None, self.tokenizer.pad_token_id, device)
            hidden = ocr_core(self.model)(
                inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask, use_cache=False
            ).last_hidden_state
            row_of_target = batch.target_index // (batch.labels.shape[1] - 1)
            total = hidden.new_zeros(())
            for k, first, last in spans:
                inside = (row_of_target >= first) & (row_of_target < last)
                target_index = batch.target_index[inside]
                loss = _head_loss(self.model, hidden, batch.labels, target_index)
                weight = target_index.numel() * ctx.world_size / max(1, lanes[k]["plan"][step][3])
                total = total + loss * weight
                results[k][0] += loss.detach().float() * weight
                results[k][1] += last - first
                results[k][2] += int(batch.attention_mask[first:last].sum())
        return total

    def _apply_step(self, lane, step, loss, samples, tokens) -> None:
        """Clip, update and record one adapter's step (the one-adapter loop's bookkeeping)."""
        cfg, state, progress = lane["variant"].config, lane["state"], lane["progress"]
        epoch, step_in_epoch, _, _ = lane["plan"][step]
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                f"adapter {lane['variant'].name}: loss became {loss} at step {progress.global_step + 1} (epoch "
                f"{epoch}); lower its learning_rate (now {cfg.optimizer.learning_rate}); no adapter was written"
            )
        params = [p for _, p in lane["named"]]
        if cfg.optimizer.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.optimizer.max_grad_norm)
        lane["optimizer"].step()
        lane["scheduler"].step()
        lane["optimizer"].zero_grad(set_to_none=True)
        lr = lane["scheduler"].get_last_lr()[0]
        progress.record_step(samples, tokens)
        total = lane["total"]
        last_of_epoch = step + 1 >= len(lane["plan"]) or lane["plan"][step + 1][0] != epoch
        state.update(
            global_step=progress.global_step,
            epoch=epoch + 1 if last_of_epoch else epoch,
            step_in_epoch=0 if last_of_epoch else step_in_epoch + 1,
            samples_seen=state["samples_seen"] + samples,
            tokens_seen=state["tokens_seen"] + tokens,
        )
        if progress.global_step % cfg.logging_steps == 0 or progress.global_step == total:
            state["loss_history"].append([progress.global_step, loss, lr])
        if self._on_step is not None:
            self._on_step(progress.global_step)
