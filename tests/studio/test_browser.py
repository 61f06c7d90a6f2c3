"""The issue's main flow in headless Chromium (the system one, driven by playwright), offline.

Open the editor, pick a preset, change the rank and see the estimate change, see a bad value refused with its
message, launch a tiny run and watch it complete, find its version in the registry, merge two versions, and
summarize with the merged one in the playground. A screenshot of each page is taken (small enough for the
docs); ``make screenshots`` runs this test with DEEPSYNTH_SCREENSHOTS=docs/images to refresh the README's
docs/images/studio-*.png, otherwise they go to the test's temporary folder. Any request that leaves 127.0.0.1
fails the test.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (make install installs it)"),
]
#: A tiny run: few documents, one page each, two epochs, two evaluated documents, short summaries.
TINY_RUN = {
    "ingest.max_documents": "4",
    "validate.min_valid_rows": "3",
    "render.max_pages": "1",
    "train.num_epochs": "2",
    "train.lora_rank": "8",  # both runs: a linear merge needs one rank
    "evaluate.max_documents": "2",
    "evaluate.generation.max_new_tokens": "8",
    "register.model_name": "studio-e2e",
}
RUN_TIMEOUT_MS = 600_000


def screenshot(page, folder: Path, name: str) -> None:
    """A viewport screenshot, palette-quantized to stay small, as ``folder``/studio-NAME.png."""
    from PIL import Image

    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    folder.mkdir(parents=True, exist_ok=True)
    image.quantize(colors=64).save(folder / f"studio-{name}.png", optimize=True)
    assert (folder / f"studio-{name}.png").stat().st_size < 150_000


def trainable(page) -> int:
    page.wait_for_selector("#trainable")
    return int(page.inner_text("#trainable").replace(",", ""))


def wait_for_estimate_other_than(page, previous: int) -> int:
    page.wait_for_function(
        "n => { const e = document.querySelector('#trainable'); return e && e.textContent.replace(/,/g, '') != n; }",
        arg=str(previous),
        timeout=120_000,
    )
    return trainable(page)


def wait_for_job(page) -> None:
    """Wait on the runs page until the shown job has finished; it must have succeeded and registered a version."""
    done = "#run-detail .state:is(.state-succeeded, .state-failed, .state-cancelled)"
    page.wait_for_selector(done, timeout=RUN_TIMEOUT_MS)
    assert page.inner_text("#run-detail .state") == "succeeded", page.inner_text("#run-detail")
    page.wait_for_selector("#run-detail .registered", timeout=60_000)


def launch_tiny_run(page, studio, learning_rate: str) -> str:
    """Fill in the tiny run's values, launch it from the editor, wait for it to succeed; the registered version."""
    for section in ("ingest", "render", "validate", "evaluate", "register"):
        summary = page.locator("details.section > summary", has_text=re.compile(f"^{section} "))
        if summary.locator("xpath=..").get_attribute("open") is None:
            summary.click()  # open the section as a reader would
    for key, value in {**TINY_RUN, "train.learning_rate": learning_rate}.items():
        page.fill(f'[name="{key}"]', value)
    page.wait_for_selector("#validation.ok", timeout=120_000)
    page.click("#launch")
    page.wait_for_url(re.compile(r"/runs#"), timeout=60_000)
    wait_for_job(page)
    return page.inner_text("#run-detail .registered")


@pytest.fixture
def studio(start_studio, zenml_client):
    """A Studio with a token, on the session's store (the ``zenml_client`` fixture sets it up)."""
    return start_studio("flow", token="flow-token")


def test_main_flow_in_the_browser(studio, tmp_path):
    from playwright.sync_api import sync_playwright

    images = Path(os.environ.get("DEEPSYNTH_SCREENSHOTS") or tmp_path)
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})

        def route(request_route):
            url = request_route.request.url
            if url.startswith(studio.url):
                return request_route.continue_()
            outside.append(url)
            return request_route.abort()

        page.route("**/*", route)
        page.goto(studio.url + "/")
        page.fill("#token", "flow-token")
        page.dispatch_event("#token", "change")

        # the editor: preset, rank, estimate, a bad value refused with its message
        rank16 = wait_for_estimate_other_than(page, 0)  # the config as saved: rank 16
        page.select_option("#preset-picker", "minimal")
        assert page.input_value('[name="train.lora_rank"]') == "4"
        rank4 = wait_for_estimate_other_than(page, rank16)
        page.fill('[name="train.lora_rank"]', "8")
        assert wait_for_estimate_other_than(page, rank4) == 2 * rank4 and 4 * rank4 == rank16
        page.fill('[name="train.lora_rank"]', "0")
        error = page.locator('.knob[data-key="train.lora_rank"] .error')
        error.wait_for(state="visible", timeout=120_000)
        assert "lora_rank: must be at least 1" in error.inner_text()
        assert "invalid" in page.inner_text("#validation")
        page.locator('.knob[data-key="train.lora_rank"]').scroll_into_view_if_needed()
        screenshot(page, images, "configure")
        page.fill('[name="train.lora_rank"]', "8")

        # two tiny runs (the second reuses the cached data steps), each watched to completion
        first = launch_tiny_run(page, studio, "0.01")
        assert page.locator("svg.loss path").count() == 1  # the loss curve from the run's MLflow metrics
        assert "train_lora" in page.inner_text("#run-detail")
        screenshot(page, images, "runs")
        page.goto(studio.url + "/")
        second = launch_tiny_run(page, studio, "0.02")
        assert {first, second} == {"studio-e2e v1", "studio-e2e v2"}

        # the registry: both versions, compared
        page.goto(studio.url + "/registry")
        page.wait_for_selector("text=studio-e2e/2")
        page.check('.pick[value="studio-e2e/1"]')
        page.check('.pick[value="studio-e2e/2"]')
        page.click("#compare")
        page.wait_for_selector("#compare-result table")
        assert "rouge_l" in page.inner_text("#compare-result")
        screenshot(page, images, "registry")

        # merge the two; the merge runs as a job, is evaluated and registered as v3 with its parents as tags
        page.goto(studio.url + "/merge")
        page.check('.pick[value="studio-e2e/1"]')
        page.check('.pick[value="studio-e2e/2"]')
        page.fill("#weights", "0.5,0.5")
        screenshot(page, images, "merge")
        page.click("#merge")
        page.wait_for_url(re.compile(r"/runs#"), timeout=60_000)
        wait_for_job(page)
        assert page.inner_text("#run-detail .registered") == "studio-e2e v3"
        page.goto(studio.url + "/registry")
        page.wait_for_selector("text=merge.parent.1=models:/studio-e2e/1")

        # promote the merged version with a reason (recorded on it), and download its package
        page.check('.pick[value="studio-e2e/3"]')
        page.fill("#reason", "merged adapter reviewed")
        page.click("#promote")
        page.wait_for_selector("text=promotion_reason=merged adapter reviewed")
        row = page.locator("tr", has=page.locator('.pick[value="studio-e2e/3"]'))
        assert "champion" in row.inner_text()
        package = page.request.get(studio.url + "/api/models/studio-e2e/versions/3/download")
        assert package.status == 200
        with zipfile.ZipFile(io.BytesIO(package.body())) as archive:
            assert "manifest.json" in archive.namelist() and "inference.py" in archive.namelist()

        # the playground: the merged version beside the first
        page.goto(studio.url + "/playground")
        page.wait_for_selector('#version-a option[value="studio-e2e/3"]', state="attached")
        page.select_option("#version-a", "studio-e2e/3")
        page.select_option("#version-b", "studio-e2e/1")
        page.fill("#text", "We study summarisation of rendered pages. We propose a decoder adapter and evaluate it.")
        page.click("#summarize")
        page.wait_for_selector(".card >> nth=1", timeout=300_000)
        assert [h.inner_text() for h in page.locator(".card h3").all()] == ["studio-e2e/3", "studio-e2e/1"]
        screenshot(page, images, "playground")
        browser.close()
    assert outside == []
