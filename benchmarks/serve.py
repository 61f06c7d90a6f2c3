"""Serving throughput and latency: sequential (batch size 1) vs batched, at several concurrencies; streaming
time to first token; least-recently-used adapter churn; and a hot swap under load.

    python -m benchmarks.serve [--device cpu|cuda] [--model tiny] [--requests 64] [--concurrency 1,4,16]

One server per side, started as users start it (``deepsynth serve`` in a process of its own, its
torch threads left at their default; real HTTP on 127.0.0.1), two LoRA adapters on one base model,
each request naming one of them in turn (so batches mix adapters); the clients are threads of this
process. Requests carry pre-rendered pages (base64 PNG, tiny mode): the figures are the server's
and the model's, not the renderer's (``benchmarks.render`` measures that). For each concurrency
the same number of requests is sent by that many clients; requests/s and p50/p99 latency are
measured on the client side, the mean batch size from the server's ``/metrics``. Then, under load
from 4 clients, the first adapter is swapped for another package through ``POST
/v1/load_lora_adapter``: the swap's duration and the latency of requests that overlapped it.
Streaming: OpenAI chat completions with ``stream: true`` (a page image each) from 1 and from the
highest concurrency's clients: time to the first text chunk vs to ``[DONE]``. Churn: four
registered versions requested in turn (``model: NAME/VERSION``, loaded on demand) with
``max_loras`` room for two of them: throughput, p99, evictions and failed requests. Goal (issue
24): batched ≥ 4x sequential at 16 clients. Writes benchmarks/results/serve.json (serve_gpu.json
on CUDA).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.common import english_documents, write_result  # noqa: E402


def make_package(home: Path, out: Path, seed: int, model: str) -> Path:
    """An exported LoRA package on ``model`` with random (non-zero) adapter weights."""
    import torch
    from peft import get_peft_model

    from deepsynth.adapter_layout import save_adapter
    from deepsynth.export import export_adapter
    from deepsynth.models.loading import load_base_model
    from deepsynth.training.config import TrainerConfig
    from deepsynth.training.lora_config import build_lora_config

    config = TrainerConfig(
        model_name=model,
        deepsynth_home=str(home),
        output_dir=str(out / "adapter"),
        mode="tiny",
        lora_rank=16,
        lora_alpha=32,
        lora_dropout=0.0,
        max_length=512,
        progress_bar=False,
        seed=seed,
    )
    torch.manual_seed(seed)
    base, _, _ = load_base_model(model, home=home)
    lora = build_lora_config(config)
    lora.init_lora_weights = False  # random B too: the adapter changes every output
    save_adapter(get_peft_model(base, lora), out / "adapter")
    (out / "adapter" / "trainer_config.json").write_text(json.dumps(config.to_dict()))
    render = {"modes": ["tiny"], "max_pages": 1}
    return export_adapter(out / "adapter", out / "package", create_package=False, render_settings=render).output_dir


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST JSON; (status, answer)."""
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def rendered_pages(count: int) -> list[str]:
    """``count`` English documents rendered to one tiny-mode page each, as base64 PNG."""
    import base64

    from deepsynth.rendering.config import RenderSettings
    from deepsynth.rendering.renderer import DocumentRenderer

    renderer = DocumentRenderer(RenderSettings(modes=["tiny"], max_pages=1, workers=1, page_cache=False))
    return [
        base64.b64encode(renderer.render(doc)[0]["pages"][0]).decode() for doc in english_documents(count, chars=1500)
    ]


def load(
    url: str, pages: list[str], requests: int, clients: int, max_new_tokens: int, during: Any = None
) -> list[tuple[float, float, int]]:
    """``requests`` summarize calls from ``clients`` threads; (start, end, status) per request."""
    counter = iter(range(requests))
    lock = threading.Lock()
    out: list[tuple[float, float, int]] = []

    def client() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            began = time.perf_counter()
            status, _ = post(
                f"{url}/v1/summarize",
                {"pages": [pages[i % len(pages)]], "adapter": "ab"[i % 2], "max_new_tokens": max_new_tokens},
            )
            out.append((began, time.perf_counter(), status))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    if during is not None:
        during()
    for thread in threads:
        thread.join()
    return out


def figures(samples: list[tuple[float, float, int]]) -> dict[str, Any]:
    """requests/s, p50/p99 latency (ms) and failures of one load."""
    latencies = sorted(1000 * (end - start) for start, end, _ in samples)
    wall = max(end for _, end, _ in samples) - min(start for start, _, _ in samples)
    p99 = latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))]
    return {
        "requests": len(samples),
        "failed": sum(s != 200 for *_, s in samples),
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(samples) / wall, 3),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(p99, 1),
    }


@contextlib.contextmanager
def running_server(
    home: Path, models: list[str], settings: dict[str, Any], log: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``deepsynth serve --model M... --config`` (``settings`` as its ``serve`` section) in its own process;
    yields its URL, stops it with SIGTERM."""
    config = log.with_suffix(".yaml")
    config.write_text(yaml.safe_dump({"serve": {"poll_interval_s": 0, **settings}}))
    command = [sys.executable, "-m", "deepsynth_cli", "serve", "--config", str(config), "--port", "0", "--json"]
    for model in models:
        command += ["--model", model]
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "DEEPSYNTH_HOME": str(home), **(env or {})},
        )
    try:
        lines: list[str] = []
        while True:  # one JSON document on stdout once the server listens
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"deepsynth serve exited with {proc.wait()}:\n{log.read_text()[-3000:]}")
            lines.append(line)
            with contextlib.suppress(ValueError):
                url = json.loads("".join(lines))["url"]
                break
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def scrape(url: str) -> dict[str, float]:
    """The server's Prometheus samples, ``name{labels}`` → value (labels sorted, as the text format writes them)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def mean_batch(before: dict[str, float], after: dict[str, float]) -> float:
    """Requests per batch between two scrapes."""
    batches = after["deepsynth_batch_size_count"] - before["deepsynth_batch_size_count"]
    return round((after["deepsynth_batch_size_sum"] - before["deepsynth_batch_size_sum"]) / max(batches, 1), 2)


def serve_side(
    home: Path, packages: list[Path], device: str, batch: int, args: argparse.Namespace, pages: list[str]
) -> dict[str, Any]:
    """Start a server with ``max_batch_size=batch`` and measure every concurrency level (and, batched,
    streaming and the hot swap)."""
    settings = {
        "device": device,
        "max_batch_size": batch,
        "max_wait_ms": args.max_wait_ms,
        "max_queue": 256,
        "max_new_tokens": max(args.max_new_tokens, 1),
        "default_max_new_tokens": 1,
        "allow_runtime_lora_updates": True,
        "adapter_root": str(packages[0].parent.parent),
    }
    models = [f"a={packages[0]}", f"b={packages[1]}"]
    with running_server(home, models, settings, home.parent / f"serve-{batch}.log") as url:
        load(url, pages, 4, 2, args.max_new_tokens)  # warm-up
        levels = {}
        for clients in args.concurrency:
            before = scrape(url)
            levels[str(clients)] = figures(load(url, pages, args.requests, clients, args.max_new_tokens))
            levels[str(clients)]["mean_batch"] = mean_batch(before, scrape(url))
        extra = {}
        if batch > 1:
            extra["streaming"] = {
                str(c): streaming(url, pages, args.requests, c, args.max_new_tokens)
                for c in sorted({1, max(args.concurrency)})
            }
            extra["hot_swap"] = hot_swap(url, packages, pages, args)
    return {"max_batch_size": batch, "levels": levels, **extra}


def streaming(url: str, pages: list[str], requests: int, clients: int, max_new_tokens: int) -> dict[str, Any]:
    """``requests`` streamed chat completions (one page image each) from ``clients`` threads: time to the first
    text chunk and to ``[DONE]`` (ms, p50 and p99), and failures."""
    counter, lock = iter(range(requests)), threading.Lock()
    first: list[float] = []
    whole: list[float] = []
    failed = [0]

    def client() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{pages[i % len(pages)]}"}}
            body = {
                "model": "ab"[i % 2],
                "messages": [{"role": "user", "content": [image]}],
                "max_tokens": max_new_tokens,
                "stream": True,
            }
            request = urllib.request.Request(
                f"{url}/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
            )
            began, seen = time.perf_counter(), None
            try:
                with urllib.request.urlopen(request, timeout=600) as response:
                    for line in response:
                        if seen is None and b'"content"' in line:
                            seen = time.perf_counter()
                        if line.startswith(b"data: [DONE]"):
                            break
            except OSError:
                failed[0] += 1
                continue
            end = time.perf_counter()
            first.append(1000 * ((seen or end) - began))
            whole.append(1000 * (end - began))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "requests": requests,
        "failed": failed[0],
        "first_token_p50_ms": round(statistics.median(first), 1) if first else None,
        "first_token_p99_ms": round(_p99(first), 1) if first else None,
        "complete_p50_ms": round(statistics.median(whole), 1) if whole else None,
    }


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


def churn(home: Path, packages: list[Path], device: str, args: argparse.Namespace, pages: list[str]) -> dict[str, Any]:
    """Four registered versions, room for two beside a pinned one: every request names a version in turn."""
    import mlflow

    from deepsynth.registry import register_package

    store = packages[0].parent.parent / "mlflow"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("bench", artifact_location=str(store / "art")))
    name = "bench-churn"
    versions = [register_package(package, name, commit="bench")["version"] for package in packages[:4]]
    settings = {
        "device": device,
        "max_batch_size": 16,
        "max_wait_ms": args.max_wait_ms,
        "max_queue": 256,
        "max_new_tokens": max(args.max_new_tokens, 1),
        "default_max_new_tokens": 1,
        "max_loras": 3,
        "allow_model": [name],
    }
    counter, lock = iter(range(args.requests)), threading.Lock()
    samples: list[tuple[float, float, int]] = []

    def client(url: str) -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            began = time.perf_counter()
            status, _ = post(
                f"{url}/v1/summarize",
                {
                    "pages": [pages[i % len(pages)]],
                    "model": f"{name}/{versions[i % 4]}",
                    "max_new_tokens": args.max_new_tokens,
                },
            )
            samples.append((began, time.perf_counter(), status))

    uris = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri}
    with running_server(home, [f"pinned={packages[0]}"], settings, home.parent / "serve-churn.log", uris) as url:
        threads = [threading.Thread(target=client, args=(url,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        metrics = scrape(url)
    return {
        "versions": len(versions),
        "max_loras": settings["max_loras"],
        "clients": 4,
        **figures(samples),
        "evictions": int(metrics["deepsynth_lora_evictions_total"]),
        "loads_on_demand": int(metrics["deepsynth_lora_loads_on_demand_total"]),
    }


def hot_swap(url: str, packages: list[Path], pages: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Swap adapter ``a`` for the third package while 4 clients send requests."""
    window: dict[str, float] = {}

    def swap() -> None:
        time.sleep(0.5)
        window["start"] = time.perf_counter()
        status, answer = post(f"{url}/v1/load_lora_adapter", {"lora_name": "a", "lora_path": str(packages[2])})
        window["end"] = time.perf_counter()
        assert status == 200 and answer["status"] == "swapped", answer

    samples = load(url, pages, args.requests, 4, args.max_new_tokens, during=swap)
    overlapping = [s for s in samples if s[1] >= window["start"] and s[0] <= window["end"]]
    others = [s for s in samples if s not in overlapping]
    return {
        "swap_s": round(window["end"] - window["start"], 3),
        "all": figures(samples),
        "overlapping_swap": figures(overlapping) if overlapping else None,
        "outside_swap": figures(others) if others else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="tiny", help="base model (tiny profile or a local directory)")
    parser.add_argument("--requests", type=int, default=64, help="requests per concurrency level")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=10, help="how long a batch waits to fill")
    parser.add_argument("--out", default=None, help="result name (default serve, serve_gpu on cuda)")
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    pages = rendered_pages(8)
    with tempfile.TemporaryDirectory(prefix="deepsynth-bench-serve-") as tmp:
        home = Path(tmp) / "home"
        if args.model == "tiny":
            from deepsynth.models.loading import build_tiny_model, tiny_model_dir

            build_tiny_model(tiny_model_dir(home))
        packages = [make_package(home, Path(tmp) / f"p{seed}", seed, args.model) for seed in (1, 2, 3, 4)]
        sides = {
            "sequential": serve_side(home, packages, args.device, 1, args, pages),
            "batched": serve_side(home, packages, args.device, 16, args, pages),
        }
        lru = churn(home, packages, args.device, args, pages)
    ratios = {
        c: round(
            sides["batched"]["levels"][c]["requests_per_s"] / sides["sequential"]["levels"][c]["requests_per_s"], 2
        )
        for c in sides["batched"]["levels"]
    }
    payload = {
        "device": args.device,
        "model": args.model,
        "server": "deepsynth serve in its own process, torch's default threads",
        "max_new_tokens": args.max_new_tokens,
        "requests_per_level": args.requests,
        "sides": sides,
        "batched_vs_sequential": ratios,
        "goal_ratio_at_16": 4.0,
        "churn": lru,
    }
    if args.device == "cuda":
        import torch

        payload["machine_device"] = torch.cuda.get_device_name(0)
    path = write_result(args.out or ("serve_gpu" if args.device == "cuda" else "serve"), payload)
    summary = {
        "batched_vs_sequential": ratios,
        "streaming": sides["batched"].get("streaming"),
        "churn": lru,
        "hot_swap": sides["batched"].get("hot_swap"),
    }
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}")


def report_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """BENCHMARKS.md rows (what, command, baseline, result): throughput per concurrency against the sequential
    side (goal at 16 clients: 4x), streaming time to first token, LRU churn, and the hot swap."""
    seq, bat = r["sides"]["sequential"]["levels"], r["sides"]["batched"]["levels"]
    command = "python -m benchmarks.serve"

    def fig(x: dict[str, Any]) -> str:
        return f"{x['requests_per_s']:.2f} req/s, p50 {x['p50_ms']:.0f} ms, p99 {x['p99_ms']:.0f} ms"

    rows = []
    for c in bat:
        ratio = r["batched_vs_sequential"][c]
        goal, target = "", r.get("goal_ratio_at_16", 4.0)
        if c == "16":
            goal = f" (goal ≥ {target}x: {'met' if ratio >= target else 'not met'})"
        rows.append(
            (
                f"Serving, {r['model']} profile on {r['device']}, {c} concurrent client(s), 2 adapters mixed, "
                f"{r['max_new_tokens']} new tokens",
                command,
                f"sequential (batch 1): {fig(seq[c])}",
                f"batched (≤ {r['sides']['batched']['max_batch_size']}, mean {bat[c].get('mean_batch', '?')}): "
                f"{fig(bat[c])}: **{ratio}x**{goal}",
            )
        )
    for c, x in (r["sides"]["batched"].get("streaming") or {}).items():
        rows.append(
            (
                f"Streaming (OpenAI chat, SSE), {c} client(s), {r['device']}",
                command,
                f"whole answer p50 {x['complete_p50_ms']:.0f} ms",
                f"first token p50 {x['first_token_p50_ms']:.0f} ms, p99 {x['first_token_p99_ms']:.0f} ms; "
                f"failed {x['failed']}",
            )
        )
    lru = r.get("churn")
    if lru:
        rows.append(
            (
                f"LRU churn: {lru['versions']} registered versions loaded on demand, max_loras {lru['max_loras']} "
                f"(one pinned), {lru['clients']} clients, {r['device']}",
                command,
                f"batched, all resident: {fig(bat[max(bat, key=int)])}",
                f"{fig(lru)}; {lru['evictions']} evictions, {lru['loads_on_demand']} on-demand loads, "
                f"failed {lru['failed']}",
            )
        )
    swap = r["sides"]["batched"].get("hot_swap")
    if swap:
        during = swap["overlapping_swap"] or {"requests": 0, "p50_ms": 0, "p99_ms": 0}
        rows.append(
            (
                f"Hot swap under load (4 clients, batched, {r['device']})",
                command,
                f"requests outside the swap: {fig(swap['outside_swap'])}" if swap.get("outside_swap") else "—",
                f"swap {swap['swap_s']:.2f} s; {during['requests']} requests overlapping it: p50 "
                f"{during['p50_ms']:.0f} ms, p99 {during['p99_ms']:.0f} ms; failed **{swap['all']['failed']}**",
            )
        )
    return rows


if __name__ == "__main__":
    main()
