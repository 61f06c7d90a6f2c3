"""Every endpoint over real HTTP on 127.0.0.1: two trained adapters on one base, mixed batches, load/unload,
verification of handed-in packages, and the protections (limits, queue, timeout, token, bad input)."""

from __future__ import annotations

import concurrent.futures
import io
import shutil
import threading
import time

import pytest
from PIL import Image
from support.rendered import draw_page
from support.serving_client import OTHER, TEXT, b64, call, start_http
from support.tamper import flip_file_byte

from deepsynth.rendering.modes import MODES
from deepsynth.serving.config import TOKEN_ENV, ServeConfig
from deepsynth.serving.server import ModelServer

LIMITS = dict(
    max_batch_size=8,
    max_wait_ms=20,
    max_queue=6,
    max_text_chars=3000,
    max_pages=3,
    max_page_pixels=800 * 800,
    max_body_bytes=1_000_000,
    max_new_tokens=16,
    default_max_new_tokens=6,
    poll_interval_s=0,
    allow_runtime_lora_updates=True,
)


@pytest.fixture(scope="module")
def server(packages, shared_home, tmp_path_factory):
    """One server for the module: the first package as a directory, the second as its zip; runtime updates
    on, for packages under the session's temp folder."""
    config = ServeConfig(**LIMITS, adapter_root=str(tmp_path_factory.getbasetemp()))
    served = ModelServer(config, home=shared_home).start(
        [f"first={packages[0].output_dir}", f"second={packages[1].package_path}"]
    )
    yield served
    served.stop()


def page_png(size=None, text=TEXT) -> bytes:
    """A page drawn in the adapters' training mode (tiny)."""
    return draw_page(text, size or MODES["tiny"].page_size)


def wait_until(condition, what, limit_s=60.0):
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_health_readiness_and_openapi_docs(url):
    assert call(f"{url}/healthz")[::2] == (200, {"status": "ok"})
    assert call(f"{url}/readyz")[::2] == (200, {"status": "ready", "adapters": 2})
    status, _, spec = call(f"{url}/openapi.json")
    assert status == 200 and {
        "/v1/summarize",
        "/v1/adapters",
        "/v1/load_lora_adapter",
        "/v1/unload_lora_adapter",
        "/healthz",
        "/readyz",
    } <= set(spec["paths"])
    status, _, page = call(f"{url}/docs")
    assert status == 200 and "swagger" in page.lower()


def test_adapters_lists_both_with_their_sha256(url, packages):
    status, _, body = call(f"{url}/v1/adapters")
    assert status == 200
    assert [(a["name"], a["sha256"]) for a in body["adapters"]] == [
        ("first", packages[0].adapter_sha256),
        ("second", packages[1].adapter_sha256),
    ]
    assert packages[0].adapter_sha256 != packages[1].adapter_sha256


@pytest.mark.parametrize("index, adapter", [(0, "first"), (1, "second"), (1, "sha256-prefix")])
def test_summarize_text_equals_the_adapter_alone(url, packages, alone, index, adapter):
    adapter = packages[index].adapter_sha256[:12] if adapter == "sha256-prefix" else adapter
    status, _, body = call(f"{url}/v1/summarize", "POST", {"text": TEXT, "adapter": adapter, "max_new_tokens": 6})
    assert status == 200, body
    assert body["summary"] == alone(index, text=TEXT) and body["summary"]
    assert body["adapter"]["sha256"] == packages[index].adapter_sha256
    assert body["timings"]["total_ms"] > 0 and body["tokens"] >= 1


def test_summarize_page_images_equals_the_adapter_alone(url, alone):
    png = page_png()
    status, _, body = call(f"{url}/v1/summarize", "POST", {"pages": [b64(png)], "adapter": "second"})
    assert status == 200, body
    assert body["summary"] == alone(1, pages=[png]) and body["pages"] == 1


def test_concurrent_requests_form_mixed_batches_equal_to_each_served_alone(url, server, alone):
    """Requests queue while the model is busy, then decode in batches that mix both adapters."""
    cases = [
        ("first", 0, TEXT),
        ("second", 1, TEXT),
        ("first", 0, OTHER),
        ("second", 1, OTHER),
        ("first", 0, TEXT),
        ("second", 1, OTHER),
    ]
    results: list = [None] * len(cases)

    def post(i, adapter, text):
        results[i] = call(f"{url}/v1/summarize", "POST", {"text": text, "adapter": adapter, "max_new_tokens": 6})

    threads = []
    with server.holder.lock:  # the batch worker waits; requests pile up in the queue in this order
        for i, (adapter, _, text) in enumerate(cases):
            before = server.batcher.submitted
            threads.append(threading.Thread(target=post, args=(i, adapter, text)))
            threads[-1].start()
            wait_until(lambda before=before: server.batcher.submitted > before, "the request to be queued")
    for thread in threads:
        thread.join(timeout=120)
    assert all(r is not None and r[0] == 200 for r in results), results
    for (adapter, index, text), (_, _, body) in zip(cases, results):
        assert body["adapter"]["name"] == adapter and body["summary"] == alone(index, text=text)
    by_batch: dict = {}
    for _, _, body in results:
        by_batch.setdefault(body["timings"]["batch"], set()).add(body["adapter"]["name"])
    assert {"first", "second"} in by_batch.values(), by_batch


def test_load_and_unload_an_adapter_from_a_zip_package(url, packages, alone):
    status, _, body = call(
        f"{url}/v1/load_lora_adapter", "POST", {"lora_name": "third", "lora_path": str(packages[0].package_path)}
    )
    assert status == 200 and body["status"] == "loaded" and body["adapter"]["sha256"] == packages[0].adapter_sha256
    status, _, body = call(f"{url}/v1/summarize", "POST", {"text": OTHER, "adapter": "third"})
    assert status == 200 and body["summary"] == alone(0, text=OTHER)
    assert call(f"{url}/v1/unload_lora_adapter", "POST", {"lora_name": "third"})[::2] == (
        200,
        {"status": "unloaded", "adapter": body["adapter"]},
    )
    assert call(f"{url}/v1/summarize", "POST", {"text": OTHER, "adapter": "third"})[0] == 404
    assert call(f"{url}/v1/unload_lora_adapter", "POST", {"lora_name": "third"})[0] == 404
    assert [a["name"] for a in call(f"{url}/v1/adapters")[2]["adapters"]] == ["first", "second"]


def _tampered(src, dst):
    shutil.copytree(src, dst)
    flip_file_byte(dst / "adapter_model.safetensors", -1)


def _with_pickle(src, dst):
    shutil.copytree(src, dst)
    (dst / "extra_weights.bin").write_bytes(b"\x80\x04K\x01.")  # a pickle


@pytest.mark.parametrize(
    "make, message",
    [
        (_tampered, "does not match its sha256"),
        (_with_pickle, "not an allowed file type"),
        (lambda src, dst: shutil.copytree(src.parent.parent / "serving_second_adapter", dst), "not an export package"),
    ],
    ids=["tampered", "pickle", "not-a-package"],
)
def test_packages_are_verified_before_loading(url, packages, tmp_path, make, message):
    target = tmp_path / "package"
    make(packages[1].output_dir, target)
    status, _, body = call(f"{url}/v1/load_lora_adapter", "POST", {"lora_name": "bad", "lora_path": str(target)})
    assert status == 400 and message in body["error"], body
    assert "bad" not in [a["name"] for a in call(f"{url}/v1/adapters")[2]["adapters"]]


def _png_of(size) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "body, raw, status, message",
    [
        (None, b'{"text": ', 422, "invalid JSON"),
        ({"text": "x" * 3001}, None, 413, "3001 characters"),
        ({"pages": ["A"] * 4}, None, 413, "4 pages"),
        ({"pages": [b64(_png_of((900, 900)))]}, None, 413, "900x900 pixels"),
        ({"pages": ["@@not base64@@"]}, None, 400, "pages[0]: not valid base64"),
        ({"pages": [b64(b"certainly not an image")]}, None, 400, "pages[0]: not a decodable image"),
        ({"text": TEXT, "temprature": 0.5}, None, 422, "temprature"),
        ({"text": TEXT, "max_new_tokens": 0}, None, 400, "max_new_tokens: must be within 1-16 (got 0)"),
        ({"text": TEXT, "instruction": "\ud83d"}, None, 422, "instruction: not valid Unicode"),
        ({"text": TEXT, "pages": []}, None, 400, "exactly one of text or pages"),
        ({}, None, 400, "exactly one of text or pages"),
        ({"text": "   "}, None, 400, "text: is empty"),
        ({"text": TEXT, "adapter": "nope"}, None, 404, "'nope' is not served"),
        ({"text": TEXT, "max_new_tokens": 999}, None, 400, "max_new_tokens"),
        (None, b'{"text": "' + b"x" * 1_000_001 + b'"}', 413, "request body"),
    ],
    ids=[
        "malformed-json",
        "long-text",
        "many-pages",
        "many-pixels",
        "bad-base64",
        "bad-image",
        "unknown-field",
        "zero-tokens",
        "lone-surrogate",
        "text-and-pages",
        "empty-body",
        "blank-text",
        "unknown-adapter",
        "too-many-tokens",
        "huge-body",
    ],
)
def test_bad_requests_get_a_clear_4xx(url, body, raw, status, message):
    got, _, answer = call(f"{url}/v1/summarize", "POST", body, raw=raw)
    assert got == status and message in answer["error"], answer


def test_a_full_queue_answers_429_with_retry_after_and_the_rest_is_served(url, server):
    answers: list = []

    def post():
        answers.append(call(f"{url}/v1/summarize", "POST", {"text": TEXT, "adapter": "first", "max_new_tokens": 2}))

    threads = []
    with server.holder.lock:  # nothing decodes: the worker holds one batch, the queue fills up
        for _ in range(LIMITS["max_batch_size"] + LIMITS["max_queue"] + 2):
            before, done = server.batcher.submitted, len(answers)
            threads.append(threading.Thread(target=post))
            threads[-1].start()
            wait_until(
                lambda before=before, done=done: server.batcher.submitted > before or len(answers) > done,
                "queued or refused",
            )
            if len(answers) > done:
                break
    for thread in threads:
        thread.join(timeout=120)
    refused = [a for a in answers if a[0] == 429]
    assert len(refused) == 1 and refused[0][1]["retry-after"] == "1" and "busy" in refused[0][2]["error"]
    assert sum(a[0] == 200 for a in answers) == len(threads) - 1


def test_a_request_past_its_timeout_gets_504(url, server):
    server.config.request_timeout_s = 0.3
    try:
        with server.holder.lock:
            status, _, body = call(f"{url}/v1/summarize", "POST", {"text": TEXT, "adapter": "first"})
    finally:
        server.config.request_timeout_s = ServeConfig().request_timeout_s
    assert status == 504 and "request_timeout_s" in body["error"]


def test_the_bearer_token_is_required_when_set(server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "s3cret-token")
    http = start_http(server)
    try:
        assert call(f"{http.url}/v1/adapters")[0] == 401
        assert call(f"{http.url}/v1/adapters", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert call(f"{http.url}/v1/adapters", headers={"Authorization": "Bearer s3cret-token"})[0] == 200
        assert call(f"{http.url}/healthz")[0] == 200
    finally:
        http.stop()


def test_a_server_without_adapters_is_not_ready(shared_home):
    empty = ModelServer(ServeConfig(poll_interval_s=0), home=shared_home)
    http = start_http(empty)
    try:
        status, headers, _ = call(f"{http.url}/readyz")
        assert status == 503 and headers["retry-after"] == "1"
        status, headers, body = call(f"{http.url}/v1/summarize", "POST", {"text": TEXT})
        assert status == 503 and headers["retry-after"] == "1" and "no adapter" in body["error"]
        assert call(f"{http.url}/v1/adapters")[::2] == (200, {"adapters": [], "max_loras": 8})
    finally:
        http.stop()
        empty.stop()


def test_the_server_binds_127_0_0_1_unless_told_otherwise():
    assert ServeConfig().host == "127.0.0.1"


def _job(server, instruction=None, **generation):
    from deepsynth.inference.config import GenerationConfig
    from deepsynth.serving.batcher import Job

    slot = server.holder.resolve("first")
    settings = GenerationConfig(**{"max_new_tokens": 6, **generation})
    return Job("first", slot.render(TEXT, None), slot.mode, instruction, settings)


def test_one_bad_request_never_fails_the_others_in_its_batch(url, server, alone):
    """The tokenizer refuses a lone surrogate inside the worker: that request fails alone (issue 27, case 3)."""
    good, bad = _job(server), _job(server, instruction="\ud83d")
    with server.holder.lock:  # both wait for the same batch
        server.batcher.submit(good)
        server.batcher.submit(bad)
    assert good.future.result(timeout=120).text == alone(0, text=TEXT)
    with pytest.raises(Exception, match="TextEncodeInput"):
        bad.future.result(timeout=120)
    # Over HTTP the bad one never reaches a batch: 422 naming the field, the good one 200.
    answers = {}
    threads = [
        threading.Thread(target=lambda k=k, b=b: answers.__setitem__(k, call(f"{url}/v1/summarize", "POST", b)))
        for k, b in [("good", {"text": TEXT, "adapter": "first"}), ("bad", {"text": TEXT, "instruction": "\ud83d"})]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert answers["good"][0] == 200 and answers["good"][2]["summary"] == alone(0, text=TEXT)
    assert answers["bad"][0] == 422 and "instruction: not valid Unicode" in answers["bad"][2]["error"]


def test_a_request_past_its_deadline_is_dropped_before_its_batch(server):
    from deepsynth.serving.batcher import DeadlineExceeded

    job = _job(server)
    job.deadline = time.perf_counter() + 0.2
    batches, dropped = server.batcher.batches, server.batcher.dropped
    with server.holder.lock:
        server.batcher.submit(job)
        time.sleep(0.5)
    with pytest.raises(DeadlineExceeded):
        job.future.result(timeout=60)
    assert server.batcher.dropped == dropped + 1 and server.batcher.batches == batches  # nothing was decoded


def test_work_whose_caller_gave_up_stops_mid_decode(server):
    from deepsynth.serving.batcher import DeadlineExceeded

    full = _job(server, max_new_tokens=16)
    server.batcher.submit(full)
    result = full.future.result(timeout=120)
    full_steps = server.batcher.last_steps
    assert full_steps >= 4 and len(result.token_ids) >= 4, result  # so that stopping early is observable

    job = _job(server, max_new_tokens=16)
    job.on_text = lambda _piece: job.abandon()  # the (streaming) client leaves after its first piece of text
    server.batcher.submit(job)
    with pytest.raises((DeadlineExceeded, concurrent.futures.CancelledError)):
        job.future.result(timeout=120)
    assert server.batcher.last_steps < full_steps


def test_deep_nesting_and_unknown_routes_answer_in_the_error_shape(url):
    for raw in (b'{"text": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", b"[" * 50_000):
        status, _, body = call(f"{url}/v1/summarize", "POST", raw=raw)
        assert 400 <= status < 500 and isinstance(body, dict) and set(body) == {"error"}, (status, body)
    status, _, body = call(f"{url}/v1/nothing-here")
    assert status == 404 and set(body) == {"error"}


def test_docs_load_their_assets_locally_or_are_off(url, shared_home):
    status, _, page = call(f"{url}/docs")
    assert status == 200 and "/docs/assets/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert call(f"{url}/docs/assets/swagger-ui-bundle.js")[0] == 200
    off = ModelServer(ServeConfig(poll_interval_s=0, docs=False), home=shared_home)
    http = start_http(off)
    try:
        assert call(f"{http.url}/docs")[0] == 404 and call(f"{http.url}/openapi.json")[0] == 404
    finally:
        http.stop()
        off.stop()
