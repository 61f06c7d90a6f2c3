"""The OpenAI-compatible API with the official ``openai`` client against the real server on 127.0.0.1: models,
completions, chat with a page image, streaming, sampling settings, stop strings, errors in OpenAI's shape;
and ``/metrics`` parsed with prometheus_client's parser after known traffic."""

from __future__ import annotations

import json
import threading
import urllib.request

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.rendered import draw_page
from support.serving_client import OTHER, TEXT, b64, call

from deepsynth.rendering.modes import MODES
from deepsynth.serving.config import ServeConfig
from deepsynth.serving.server import ModelServer


@pytest.fixture(scope="module")
def server(packages, shared_home, tmp_path_factory):
    """Both packages on one base; runtime updates on for the session's temp folder (the 409 case loads a copy)."""
    config = ServeConfig(
        poll_interval_s=0,
        max_new_tokens=16,
        default_max_new_tokens=16,
        max_wait_ms=20,
        allow_runtime_lora_updates=True,
        adapter_root=str(tmp_path_factory.getbasetemp()),
    )
    served = ModelServer(config, home=shared_home).start(
        [f"first={packages[0].output_dir}", f"second={packages[1].package_path}"]
    )
    yield served
    served.stop()


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_models_lists_the_base_and_every_adapter_with_its_parent(client, packages):
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {"tiny", "first", "second"}
    assert models["tiny"].parent is None
    assert (models["first"].parent, models["second"].parent) == ("tiny", "tiny")
    assert models["second"].model_extra["sha256"] == packages[1].adapter_sha256
    assert models["first"].root == str(packages[0].output_dir)


def test_a_completion_is_the_adapter_alone_with_the_package_settings_and_counts_usage(client, server, alone):
    answer = client.completions.create(model="first", prompt=TEXT)
    assert answer.choices[0].text == alone(0, text=TEXT) and answer.choices[0].text
    usage = answer.usage
    instruction = server.holder.tokenizer(server.holder.resolve("first").loaded.instruction)["input_ids"]
    assert 1 <= usage.completion_tokens <= 6  # the packages record max_new_tokens 6
    assert usage.prompt_tokens > len(instruction)  # image positions + instruction
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert answer.model == "first" and answer.object == "text_completion"
    assert answer.choices[0].finish_reason in ("stop", "length")


def test_chat_with_a_page_image_is_the_adapter_alone(client, alone):
    png = draw_page(TEXT, MODES["tiny"].page_size)
    answer = client.chat.completions.create(
        model="second",
        messages=[
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(png)}"}}],
            }
        ],
    )
    message = answer.choices[0].message
    assert message.role == "assistant" and message.content == alone(1, pages=[png]) and message.content


def test_chat_with_a_text_message_is_the_text_summarized(client, alone):
    answer = client.chat.completions.create(model="first", messages=[{"role": "user", "content": OTHER}])
    assert answer.choices[0].message.content == alone(0, text=OTHER)


def test_streaming_sends_chunks_that_add_up_to_the_answer_and_ends_with_done(client, url, alone):
    pieces = list(
        client.completions.create(model="second", prompt=OTHER, stream=True, stream_options={"include_usage": True})
    )
    text = "".join(c.choices[0].text for c in pieces if c.choices)
    assert text == alone(1, text=OTHER) and text
    assert [c.choices[0].finish_reason for c in pieces if c.choices][-1] in ("stop", "length")
    assert pieces[-1].usage.completion_tokens >= 1 and not pieces[-1].choices

    chat = list(
        client.chat.completions.create(model="first", messages=[{"role": "user", "content": TEXT}], stream=True)
    )
    assert chat[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chat) == alone(0, text=TEXT)

    body = json.dumps({"model": "first", "prompt": TEXT, "stream": True}).encode()
    request = urllib.request.Request(f"{url}/v1/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.read().decode().split("\n\n") if line]
    assert events[-1] == "data: [DONE]" and all(e.startswith("data: ") for e in events)


def test_sampling_with_a_seed_repeats_and_a_stop_string_cuts_the_answer(client, alone):
    greedy = alone(0, text=TEXT)
    sampled = [
        client.completions.create(model="first", prompt=TEXT, temperature=1.5, top_p=0.9, seed=11, max_tokens=8)
        for _ in range(2)
    ]
    assert sampled[0].choices[0].text == sampled[1].choices[0].text
    words = greedy.split()
    assert len(words) >= 2, greedy
    cut = client.completions.create(model="first", prompt=TEXT, stop=[" " + words[1]])
    assert cut.choices[0].text == greedy.split(" " + words[1])[0].strip() and cut.choices[0].finish_reason == "stop"
    streamed = client.completions.create(model="first", prompt=TEXT, stop=[" " + words[1]], stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == cut.choices[0].text


def test_errors_come_in_openai_shape(client, url, packages):
    with pytest.raises(openai.NotFoundError, match="'nope' is not served"):
        client.completions.create(model="nope", prompt=TEXT)
    with pytest.raises(openai.BadRequestError, match=r"max_new_tokens: must be within 1-16 \(got 0\)"):
        client.completions.create(model="first", prompt=TEXT, max_tokens=0)
    with pytest.raises(openai.BadRequestError, match="data: URL"):
        client.chat.completions.create(
            model="first",
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://example.com/p.png"}}]}
            ],
        )
    status, _, body = call(f"{url}/v1/completions", "POST", {"model": "first", "prompt": TEXT, "best_of": 3})
    assert status == 422 and "best_of" in body["error"]["message"] and body["error"]["type"] == "invalid_request_error"


def test_an_ambiguous_reference_is_409_naming_the_candidates(url, server, packages):
    body = {"lora_name": "copy", "lora_path": str(packages[0].package_path)}
    assert call(f"{url}/v1/load_lora_adapter", "POST", body)[0] == 200
    try:
        prefix = packages[0].adapter_sha256[:12]
        status, _, answer = call(f"{url}/v1/summarize", "POST", {"text": TEXT, "adapter": prefix})
        assert status == 409 and "'first'" not in answer["error"] and "first, copy" in answer["error"], answer
    finally:
        call(f"{url}/v1/unload_lora_adapter", "POST", {"lora_name": "copy"})


def _metrics(url) -> dict:
    status, headers, text = call(f"{url}/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_known_traffic(client, url, server):
    before = _metrics(url)
    answers = [client.completions.create(model="first", prompt=t) for t in (TEXT, OTHER, TEXT)]
    answers.append(client.completions.create(model="second", prompt=TEXT))
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt=TEXT)
    after = _metrics(url)

    def delta(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("deepsynth_requests_total", adapter="first") == 3
    assert delta("deepsynth_requests_total", adapter="second") == 1
    assert delta("deepsynth_generation_tokens_total", adapter="first") == sum(
        a.usage.completion_tokens for a in answers[:3]
    )
    assert delta("deepsynth_prompt_tokens_total", adapter="second") == answers[3].usage.prompt_tokens
    assert delta("deepsynth_request_latency_seconds_count", adapter="first") == 3
    assert delta("deepsynth_request_latency_seconds_bucket", adapter="first", le="+Inf") == 3
    assert delta("deepsynth_http_errors_total", status="404") == 1
    assert delta("deepsynth_http_responses_total", status="200") >= 4
    assert delta("deepsynth_batch_size_count") >= 1
    assert _value(after, "deepsynth_queue_length") == 0
    (info,) = [k for k in after if k[0] == "deepsynth_lora_requests_info"]
    assert dict(info[1]) == {"running_lora_adapters": "", "waiting_lora_adapters": "", "max_lora": "8"}
    assert _value(after, "deepsynth_lora_resident") == 2


def test_lora_requests_info_names_running_and_waiting_adapters(url, server):
    """While the worker is held, queued requests show as waiting adapters."""
    results = []
    threads = [
        threading.Thread(
            target=lambda a=a: results.append(call(f"{url}/v1/summarize", "POST", {"text": TEXT, "adapter": a}))
        )
        for a in ("first", "second")
    ]
    with server.holder.lock:
        before = server.batcher.submitted
        for thread in threads:
            thread.start()
        while server.batcher.submitted < before + 2:
            threading.Event().wait(0.02)
        samples = _metrics(url)
        (info,) = [dict(k[1]) for k in samples if k[0] == "deepsynth_lora_requests_info"]
    for thread in threads:
        thread.join(timeout=120)
    assert info == {"running_lora_adapters": "", "waiting_lora_adapters": "first,second", "max_lora": "8"}
    assert [r[0] for r in results] == [200, 200]
