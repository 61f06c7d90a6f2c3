"""Swagger UI at /docs renders the API with no network: every asset comes from the local package."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
import urllib.request

import pytest
import uvicorn
from fastapi import FastAPI

from deepsynth.api_docs import mount_offline_docs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def docs_server():
    app = FastAPI(title="probe", docs_url=None, redoc_url=None)

    @app.get("/v1/echo", summary="Echo a word back")
    def echo(word: str) -> dict:
        return {"word": word}

    mount_offline_docs(app)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_docs_page_names_only_local_assets(docs_server):
    html = urllib.request.urlopen(f"{docs_server}/docs").read().decode()
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", html) + re.findall(r"url: ?'([^']+)'", html)
    assert urls and all(u.startswith("/") for u in urls), urls
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        assert urllib.request.urlopen(docs_server + asset).status == 200
    assert urllib.request.urlopen(f"{docs_server}/openapi.json").read().startswith(b'{"openapi":"3.0.3"')


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make install installs it)")
def test_swagger_ui_renders_the_operations_offline(docs_server, tmp_path):
    # --proxy-server to a closed port: any request that leaves 127.0.0.1 fails
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=127.0.0.1", "--virtual-time-budget=15000",
         "--dump-dom", f"{docs_server}/docs"],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert "Echo a word back" in dom and "/v1/echo" in dom, dom[-2000:]
