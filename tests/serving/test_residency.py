"""Adapter residency and runtime updates on a real server (HTTP on 127.0.0.1, a real MLflow registry): at most
``max_loras`` adapters, least recently used evicted, pinned ones never; a registered model in ``allow_model``
loaded on demand by a request naming it; load/unload off unless enabled, then registry references or packages
under ``adapter_root`` only; adapters that do not fit the base refused as JSON 4xx; a package's render settings
read when it is verified, not at its first request."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from support.serving_client import TEXT, call, start_http

from deepsynth.inference import Summarizer
from deepsynth.registry import promote, register_package
from deepsynth.serving.config import ServeConfig
from deepsynth.serving.server import ModelServer

pytestmark = pytest.mark.slow

ON_DEMAND = "deepsynth-on-demand"


@pytest.fixture(scope="module")
def root(packages, tmp_path_factory):
    """``adapter_root``: both zips and the first package's folder, copied in."""
    folder = tmp_path_factory.mktemp("adapter_root")
    shutil.copy(packages[0].package_path, folder / "first.zip")
    shutil.copy(packages[1].package_path, folder / "second.zip")
    shutil.copytree(packages[0].output_dir, folder / "first-dir")
    return folder


@pytest.fixture(scope="module")
def registered(mlflow_store, packages):
    version = register_package(packages[1].output_dir, ON_DEMAND, commit="tests")["version"]
    promote(ON_DEMAND, version, alias="champion")
    return version


@pytest.fixture(scope="module")
def server(packages, shared_home, root, registered):
    config = ServeConfig(
        poll_interval_s=0,
        max_loras=2,
        allow_model=[ON_DEMAND],
        allow_runtime_lora_updates=True,
        adapter_root=str(root),
    )
    served = ModelServer(config, home=shared_home).start([f"first={packages[0].output_dir}"])
    yield served
    served.stop()


@pytest.fixture(autouse=True)
def only_the_pinned_adapter(url, server):
    """Each test starts with the startup adapter alone."""
    for slot in server.holder.slots():
        if slot.name != "first":
            server.holder.unload(slot.name)
    yield


def load(url, name, path, **extra):
    return call(f"{url}/v1/load_lora_adapter", "POST", {"lora_name": name, "lora_path": path, **extra})


def served(url):
    return [a["name"] for a in call(f"{url}/v1/adapters")[2]["adapters"]]


def test_the_least_recently_used_unpinned_adapter_is_evicted_and_pinned_ones_never(url, server, alone):
    assert load(url, "a", "second.zip")[0] == 200
    assert served(url) == ["first", "a"]
    assert call(f"{url}/v1/summarize", "POST", {"text": TEXT, "adapter": "first"})[0] == 200  # first: most recent
    evictions = server.holder.evictions
    assert load(url, "b", "first.zip")[0] == 200  # room for b: a goes (first is pinned anyway)
    assert served(url) == ["first", "b"] and server.holder.evictions == evictions + 1
    assert call(f"{url}/v1/summarize", "POST", {"text": TEXT, "adapter": "a"})[0] == 404
    status, _, body = call(f"{url}/v1/summarize", "POST", {"text": TEXT, "adapter": "b"})
    assert status == 200 and body["summary"] == alone(0, text=TEXT)

    assert load(url, "c", "second.zip", pinned=True)[0] == 200  # evicts b
    assert served(url) == ["first", "c"]
    status, headers, body = load(url, "d", "first.zip")
    assert status == 503 and "max_loras=2" in body["error"] and headers["retry-after"] == "1"
    assert served(url) == ["first", "c"]


def test_a_registered_model_in_allow_model_is_loaded_on_demand(url, server, registered, alone):
    status, _, body = call(f"{url}/v1/completions", "POST", {"model": f"{ON_DEMAND}@champion", "prompt": TEXT})
    assert status == 200 and body["choices"][0]["text"] == alone(1, text=TEXT), body
    assert (body["adapter"]["version"], body["adapter"]["alias"]) == (registered, "champion")
    models = {m["id"]: m for m in call(f"{url}/v1/models")[2]["data"]}
    assert models[f"{ON_DEMAND}@champion"]["parent"] == "tiny" and not models[f"{ON_DEMAND}@champion"]["pinned"]
    loads = server.metrics.on_demand_loads._value.get()
    again = call(f"{url}/v1/completions", "POST", {"model": f"{ON_DEMAND}/{registered}", "prompt": TEXT})
    assert again[0] == 200 and server.metrics.on_demand_loads._value.get() == loads  # resolved to the resident one

    status, _, body = call(f"{url}/v1/completions", "POST", {"model": "someone-else@champion", "prompt": TEXT})
    assert status == 404 and "not served" in body["error"]["message"]
    status, _, body = call(f"{url}/v1/completions", "POST", {"model": f"{ON_DEMAND}@nope", "prompt": TEXT})
    assert status == 404 and "has no alias @nope" in body["error"]["message"]


@pytest.mark.parametrize(
    "path, status, message",
    [
        ("../first.zip", 400, "contains '..'"),
        ("{outside}", 403, "outside adapter_root"),
        ("link.zip", 403, "outside adapter_root"),
    ],
    ids=["dotdot", "absolute-outside", "symlink-out"],
)
def test_runtime_loads_take_packages_under_adapter_root_only(url, root, packages, path, status, message):
    link = root / "link.zip"
    if not link.is_symlink():
        os.symlink(packages[1].package_path, link)
    got, _, body = load(url, "x", path.format(outside=packages[1].package_path))
    assert got == status and message in body["error"], body
    assert "x" not in served(url)


def test_runtime_updates_are_off_unless_enabled(shared_home, packages):
    server = ModelServer(ServeConfig(poll_interval_s=0), home=shared_home)
    http = start_http(server)
    try:
        for route, body in [
            ("load_lora_adapter", {"lora_name": "x", "lora_path": "models:/any@champion"}),
            ("unload_lora_adapter", {"lora_name": "x"}),
        ]:
            status, _, answer = call(f"{http.url}/v1/{route}", "POST", body)
            assert status == 403 and "--allow-runtime-lora-updates" in answer["error"]
    finally:
        http.stop()
        server.stop()
    server = ModelServer(ServeConfig(poll_interval_s=0, allow_runtime_lora_updates=True), home=shared_home)
    http = start_http(server)
    try:
        body = {"lora_name": "x", "lora_path": str(packages[0].package_path)}
        status, _, answer = call(f"{http.url}/v1/load_lora_adapter", "POST", body)
        assert status == 403 and "only registry references" in answer["error"]
    finally:
        http.stop()
        server.stop()


def _misfit(trained_adapter, rendered_dataset, destination, **change):
    """An export package whose adapter_config.json does not match its weights or its base (hashes valid)."""
    from deepsynth.export import export_adapter

    source = destination.parent / f"{destination.name}-trainer"
    shutil.copytree(trained_adapter, source)
    config = json.loads((source / "adapter_config.json").read_text())
    (source / "adapter_config.json").write_text(json.dumps({**config, **change}))
    return export_adapter(source, destination, create_package=False, dataset=rendered_dataset.path).output_dir


@pytest.mark.parametrize(
    "change",
    [{"r": 4}, {"target_modules": ["no_such_projection"], "target_parameters": None}],
    ids=["rank-mismatch", "targets-nothing"],
)
def test_an_adapter_that_does_not_fit_the_base_is_a_json_4xx(url, root, trained_adapter, rendered_dataset, change):
    name = next(iter(change))
    package = _misfit(trained_adapter, rendered_dataset, root / f"misfit-{name}", **change)
    status, headers, body = load(url, "misfit", package.name)
    assert status == 400 and headers["content-type"] == "application/json", body
    assert "does not fit its base model" in body["error"], body
    assert served(url) == ["first"]
    assert call(f"{url}/v1/summarize", "POST", {"text": TEXT, "adapter": "first"})[0] == 200


def test_render_settings_are_read_when_the_package_is_verified(url, server, root, packages, shared_home):
    assert load(url, "dir", "first-dir")[0] == 200
    settings = root / "first-dir" / "render_settings.json"
    original = settings.read_text()
    try:
        settings.write_text(json.dumps({**json.loads(original), "font_size": 30}))  # after verification
        slot = server.holder.resolve("dir")
        reference = Summarizer.load(packages[0].output_dir, home=shared_home)
        try:
            assert slot.render(TEXT, None) == reference.render_text(TEXT)
        finally:
            reference.close()
    finally:
        settings.write_text(original)
