"""Regenerate BENCHMARKS.md from benchmarks/results/*.json (run by `make bench`).

python -m benchmarks.report
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import ingest_memory, interpreter, multi_adapter, pipeline, registry_browse, serve
from benchmarks.common import RESULTS

OUT = Path(__file__).parents[1] / "BENCHMARKS.md"
Row = tuple[str, str, str, str]  # what, command, baseline, result


def _render(r: dict[str, Any]) -> list[Row]:
    s = r["sides"]
    return [
        (
            f"Rendering ~{r['doc_chars']}-char English documents, {r['mode']} mode (pages/s, peak RSS)",
            "python -m benchmarks.render",
            f"original TextToImageConverter: {s['legacy']['pages_per_s']} pages/s, {s['legacy']['peak_rss_mb']} MiB",
            f"{s['deepsynth']['pages_per_s']} pages/s, {s['deepsynth']['peak_rss_mb']} MiB: **{r['ratio']}x** (goal "
            f"≥ {r['goal']}x)",
        )
    ] + (
        [
            (
                f"Rendering ~{r['doc_chars']}-char documents in {len(r['multilingual_scripts'])} scripts (CJK, "
                "Arabic, Hebrew, "
                f"Indic, Thai, ...: font fallback, shaping, bidi), {r['mode']} mode",
                "python -m benchmarks.render",
                f"English above: {s['deepsynth']['pages_per_s']} pages/s",
                f"{s['multilingual']['pages_per_s']} pages/s, {s['multilingual']['peak_rss_mb']} MiB",
            )
        ]
        if "multilingual" in s
        else []
    )


def _scale(r: dict[str, Any]) -> list[Row]:
    small, large = r["points"][0], r["points"][-1]
    return [
        (
            f"Render + validate {small['documents']:,} → {large['documents']:,} documents ({r['mode']} mode)",
            "python -m benchmarks.scale",
            f"{small['documents']:,} docs: {small['peak_rss_mb']} MiB peak, {small['total_s']} s",
            f"{large['documents']:,} docs: {large['peak_rss_mb']} MiB peak (**{r['rss_growth']:+.1%}**, goal ≤ 10 %); "
            f"time {r['linear_fit']['intercept_s']} s + {r['linear_fit']['ms_per_doc']} ms/doc, R² "
            f"{r['linear_fit']['r2']}, "
            f"marginal cost ratio last/first interval **{r['marginal_ratio']}** (linear = 1)",
        )
    ]


def _incremental(r: dict[str, Any]) -> list[Row]:
    inc, full = r["incremental"], r["full"]
    return [
        (
            f"Retraining render, source grown {r['growth']:.0%} ({inc['documents']:,} docs, {r['mode']} mode), page "
            "cache",
            "python -m benchmarks.incremental",
            f"full render: {full['rows_rendered']:,} docs in {full['seconds']} s",
            f"{inc['rows_rendered']:,} docs rendered, {inc['rows_from_cache']:,} from cache, {inc['seconds']} s: "
            f"**{r['speedup']}x**",
        )
    ]


def _train(r: dict[str, Any]) -> list[Row]:
    res = r["results"]
    rows = [
        (
            f"Training, tiny profile, {r.get('epochs')} epochs: feature cache vs transformers.Trainer + PEFT",
            "python -m benchmarks.train",
            f"Trainer + PEFT (encoder every step): {res['baseline']['wall_s']:.1f} s",
            f"{res['lora']['wall_s']:.1f} s: **{r['speedup_vs_baseline_wall']:.2f}x** (goal ≥ 2x)",
        )
    ]
    if "feature_cache_saving_train_loop" in r:
        rows.append(
            (
                "Feature cache saving, tiny profile (training loop)",
                "python -m benchmarks.train",
                f"DeepSynth's trainer, cache off: {res['lora_no_cache']['train_loop_s']:.1f} s, "
                f"encoder {res['lora_no_cache']['encoder_share']:.0%} of it",
                f"{res['lora']['train_loop_s']:.1f} s, encoder {res['lora']['encoder_share']:.0%}: "
                f"**{r['feature_cache_saving_train_loop']:.2f}x**",
            )
        )
    for name in ("lora", "qlora4", "qlora8"):
        if name in res:
            x = res[name]
            mfu = f", MFU {x['mfu']:.1%} of a measured {x['measured_peak_gflops']:.0f} GFLOP/s" if x.get("mfu") else ""
            rows.append(
                (
                    f"Training throughput, tiny profile, {name}",
                    "python -m benchmarks.train",
                    "—",
                    f"{x['samples_per_s']:.2f} samples/s, {x.get('tokens_per_s', 0):.0f} tokens/s{mfu}, "
                    f"{x['peak_rss_mb']:.0f} MiB",
                )
            )
    return rows


def _gpu_memory(r: dict[str, Any]) -> list[Row]:
    goals = r.get("goals", {})
    return [
        (
            f"GPU memory, full-size DeepSeek-OCR, {name}",
            "python -m benchmarks.gpu_memory",
            f"goal ≤ {goals[name]['limit_gb']} GB" if name in goals else "—",
            f"{x['peak_vram_gb']:.2f} GB peak, {x['step_time_s']:.3f} s/step" if "peak_vram_gb" in x else "failed",
        )
        for name, x in r.get("results", {}).items()
    ]


def _gpu_train(r: dict[str, Any]) -> list[Row]:
    rows = []
    for name, x in r["results"].items():
        kind, _, batch = name.partition(":")
        base = r["results"].get(f"baseline:{batch}", {})
        if kind == "baseline" or "tokens_per_s" not in x:
            continue
        ratio = f": **{x['tokens_per_s'] / base['tokens_per_s']:.2f}x**" if "tokens_per_s" in base else ""
        rows.append(
            (
                f"GPU training throughput, full-size DeepSeek-OCR, {kind} batch {batch} (steady state)",
                "python -m benchmarks.gpu_train",
                f"Trainer + PEFT: {base['tokens_per_s']:.0f} tokens/s" if "tokens_per_s" in base else "—",
                f"{x['tokens_per_s']:.0f} tokens/s, MFU {x['mfu']:.1%}, {x['step_s']:.3f} s/step, "
                f"{x['peak_vram_gb']:.1f} GB{ratio}",
            )
        )
    return rows


def _data_parallel(r: dict[str, Any]) -> list[Row]:
    rows = []
    for kind in ("cpu", "gpu"):
        runs = r.get(kind) or []
        if len(runs) < 2:
            continue
        one, unit = runs[0], "process" if kind == "cpu" else "GPU"
        scaled = "; ".join(
            (
                f"{x['processes']} {unit}es: {x['samples_per_s']:.2f} samples/s (**{x['speedup_samples_per_s']:.2f}x**)"
            ).replace("GPUes", "GPUs")
            for x in runs[1:]
        )
        shared = f", the {r['cores']} cores shared" if kind == "cpu" else ""
        rows.append(
            (
                f"Data-parallel training, tiny profile, {kind.upper()}, global batch {r['global_batch']}{shared} "
                f"(torchrun from the train step)",
                "python -m benchmarks.data_parallel",
                f"1 {unit}: {one['samples_per_s']:.2f} samples/s",
                scaled,
            )
        )
    default = r.get("cpu_default_threads")
    if default:
        rows.append(
            (
                "Thread policy (free cores per process) vs torch's default threads, 1 training process, "
                f"load average {r.get('load_average_end', 0):.1f} on {r['cores']} cores",
                "python -m benchmarks.data_parallel",
                f"{default['threads']} threads: {default['samples_per_s']:.2f} samples/s",
                f"{r['cpu'][0]['samples_per_s']:.2f} samples/s: **{default['policy_speedup_samples_per_s']:.2f}x**",
            )
        )
    return rows


def _memory(r: dict[str, Any]) -> list[Row]:
    res = r["results"]
    baseline = res.get("lora_r16", {}).get("total_gb")
    rows = []
    for name, x in res.items():
        parts = x["gb_by_part_and_dtype"]
        detail = ", ".join(f"{part} {sum(d.values()):.2f} ({'/'.join(d)})" for part, d in parts.items())
        rows.append(
            (
                f"Weights on the device, full-size DeepSeek-OCR, {name} (GB by part and dtype)",
                "python -m benchmarks.memory",
                f"LoRA r16: {baseline:.2f} GB" if baseline else "—",
                f"**{x['total_gb']:.2f} GB**: {detail}; frozen float32 {x['frozen_float32_gb']:.3f} GB",
            )
        )
    return rows


def _large_document(r: dict[str, Any]) -> list[Row]:
    rows = []
    for name, label in (
        ("render", "`deepsynth render`"),
        ("data_pipeline", "`deepsynth data` (ZenML: ingest, render, validate)"),
    ):
        side = r["sides"].get(name)
        if side is None:
            continue
        before = {p["input_mb"]: p for p in r["sides"].get(f"before_{name}", {}).get("points", [])}
        points = "; ".join(
            f"{p['input_mb']} MB: {p['peak_rss_mb']:.0f} MiB (**{p['growth_per_input_mb']}x** input, {p['wall_s']} s)"
            + (
                f", before: {before[p['input_mb']]['peak_rss_mb']:.0f} MiB "
                f"({before[p['input_mb']]['growth_per_input_mb']}x, "
                f"{before[p['input_mb']]['wall_s']} s)"
                if p["input_mb"] in before
                else ""
            )
            for p in side["points"]
        )
        rows.append(
            (
                f"Peak RSS against input size: one single-line document, {label}, {r['mode']} mode, "
                f"max_pages {r['max_pages']} (growth over the baseline per MB of input)",
                "python -m benchmarks.large_document" + (f" --before {r['before'][:7]}" if r.get("before") else ""),
                f"one-sentence document: {side['baseline']['peak_rss_mb']:.0f} MiB",
                points,
            )
        )
    return rows


FORMATTERS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "serve": serve.report_rows,
    "serve_gpu": serve.report_rows,
    "render": _render,
    "scale": _scale,
    "incremental": _incremental,
    "train": _train,
    "pipeline": pipeline.report_rows,
    "interpreter": interpreter.report_rows,
    "gpu_memory": _gpu_memory,
    "memory": _memory,
    "gpu_train": _gpu_train,
    "registry_browse": registry_browse.report_rows,
    "ingest_memory": ingest_memory.report_rows,
    "multi_adapter": multi_adapter.report_rows,
    "large_document": _large_document,
    "data_parallel": _data_parallel,
}


def main() -> None:
    lines = [
        "# Benchmarks",
        "",
        "Regenerated by `make bench` (`python -m benchmarks.report` rebuilds this table from",
        "`benchmarks/results/*.json`). Ratios compare against a baseline measured in the same run;",
        "absolute times are only meaningful on the machine named.",
        "",
        "| what | command | baseline | result | date | machine |",
        "|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        formatter = FORMATTERS.get(result.get("benchmark", path.stem))
        if formatter is None:
            continue
        m = result.get("machine", {})
        machine = m.get("device") or f"{m.get('cpu_cores', '?')}-core {m.get('processor', '')} CPU"
        for what, command, baseline, outcome in formatter(result):
            lines.append(f"| {what} | `{command}` | {baseline} | {outcome} | {result.get('date', '')} | {machine} |")
    if (RESULTS / "scale.png").exists():
        lines += [
            "",
            "Render + validate time and peak memory against dataset size (`python -m benchmarks.scale`):",
            "",
            "![scale curves](benchmarks/results/scale.png)",
        ]
    missing = [
        f"`python -m benchmarks.{name}`"
        for name in ("gpu_memory", "gpu_train")
        if not (RESULTS / f"{name}.json").exists()
    ]
    if missing:
        lines += [
            "",
            f"Still to be recorded on a CUDA machine: {' and '.join(missing)} (no GPU was available",
            "when these figures were taken).",
        ]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
