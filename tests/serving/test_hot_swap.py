"""Hot swap on a real MLflow registry: the served alias moves under load (polled), or on POST /v1/load_lora_adapter.

Bounded load: a fixed number of requests from several concurrent clients over real HTTP on
127.0.0.1, with a promotion in the middle. Every request must succeed, name the version that
produced it, and equal what that version gives alone.
"""

from __future__ import annotations

import threading
import time

import pytest
from support.serving_client import OTHER, TEXT, call

from deepsynth.registry import promote, register_package
from deepsynth.serving.config import ServeConfig
from deepsynth.serving.server import ModelServer

pytestmark = pytest.mark.slow

NAME = "deepsynth-serving-test"
CHAMPION = f"models:/{NAME}@champion"
CLIENTS, AFTER_SWAP, MAX_BEFORE_SWAP = 4, 3, 40


@pytest.fixture(scope="module")
def versions(mlflow_store, packages):
    """Both packages registered (versions 1 and 2); @champion on version 1."""
    first = register_package(packages[0].output_dir, NAME, commit="tests")["version"]
    second = register_package(packages[1].output_dir, NAME, commit="tests")["version"]
    promote(NAME, first, alias="champion")
    return first, second


@pytest.fixture(scope="module")
def server(versions, shared_home):
    served = ModelServer(
        ServeConfig(
            poll_interval_s=0.2,
            max_batch_size=4,
            max_wait_ms=5,
            default_max_new_tokens=6,
            allow_runtime_lora_updates=True,
        ),
        home=shared_home,
    ).start([CHAMPION])
    yield served
    served.stop()


def wait_until(condition, what, limit_s=120.0):
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_alias_is_served_pinned_to_its_version(url, versions, packages):
    (info,) = call(f"{url}/v1/adapters")[2]["adapters"]
    assert (info["name"], info["registry_name"], info["alias"], info["version"], info["sha256"]) == (
        CHAMPION,
        NAME,
        "champion",
        versions[0],
        packages[0].adapter_sha256,
    )
    for key in ("champion", versions[0], f"{NAME}/{versions[0]}"):
        status, _, body = call(f"{url}/v1/summarize", "POST", {"text": TEXT, "adapter": key})
        assert status == 200 and body["adapter"]["version"] == versions[0], body


def test_promotion_under_load_swaps_without_a_failed_request(url, server, versions, alone):
    expected = {versions[0]: 0, versions[1]: 1}
    results: list = []
    swapped = threading.Event()

    def client(k):
        texts = (TEXT, OTHER)
        for i in range(MAX_BEFORE_SWAP):
            if swapped.is_set():
                break
            text = texts[(k + i) % 2]
            results.append((text, call(f"{url}/v1/summarize", "POST", {"text": text, "max_new_tokens": 6})))
        swapped.wait(timeout=180)
        for i in range(AFTER_SWAP):
            text = texts[(k + i) % 2]
            results.append((text, call(f"{url}/v1/summarize", "POST", {"text": text, "max_new_tokens": 6})))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(results) >= CLIENTS, "the first responses")
    promote(NAME, versions[1], alias="champion")
    wait_until(lambda: server.holder.slots()[0].version == versions[1], "the poller to swap version 2 in")
    swapped.set()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    failed = [r for _, r in results if r[0] != 200]
    assert not failed, failed[:3]
    served = {r[2]["adapter"]["version"] for _, r in results}
    assert served == set(versions)
    for text, (_, _, body) in results:
        assert body["summary"] == alone(expected[body["adapter"]["version"]], text=text), body
    assert server.poller.swaps == 1 and len(server.holder.model.peft_config) == 1  # the old adapter is gone


def test_load_lora_adapter_swaps_a_moved_alias_at_once(url, server, versions, alone):
    server.poller.stop()  # only the request may swap now
    promote(NAME, versions[0], alias="champion")
    body = {"lora_name": CHAMPION, "lora_path": CHAMPION}
    status, _, answer = call(f"{url}/v1/load_lora_adapter", "POST", body)
    assert status == 200 and answer["status"] == "swapped" and answer["adapter"]["version"] == versions[0], answer
    assert call(f"{url}/v1/load_lora_adapter", "POST", body)[2]["status"] == "unchanged"
    status, _, answer = call(f"{url}/v1/summarize", "POST", {"text": OTHER, "max_new_tokens": 6})
    assert answer["adapter"]["version"] == versions[0] and answer["summary"] == alone(0, text=OTHER)


@pytest.mark.parametrize(
    "ref, message",
    [
        (f"models:/{NAME}@no-such-alias", f"{NAME} has no alias @no-such-alias; its aliases: "),
        (
            "models:/no-such-model/1",
            "models:/no-such-model/1: no registered model named 'no-such-model'; registered models: ",
        ),
    ],
)
def test_an_unknown_registry_reference_is_a_clear_400(url, ref, message):
    status, _, body = call(f"{url}/v1/load_lora_adapter", "POST", {"lora_name": "x", "lora_path": ref})
    assert status == 400 and message in body["error"], body
