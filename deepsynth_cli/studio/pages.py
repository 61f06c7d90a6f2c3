"""The Studio's pages, rendered on the server: one layout, a form per knob, and ``studio.js`` for the live parts.

Plain HTML, the Studio's own CSS and a little vanilla JavaScript from ``/static``: no CDN, no build step.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from deepsynth_cli.studio import configs

NAV = [
    ("/", "Configure"),
    ("/runs", "Runs"),
    ("/registry", "Registry"),
    ("/merge", "Merge"),
    ("/playground", "Playground"),
]


def layout(page: str, title: str, body: str, data: dict[str, Any] | None = None) -> str:
    """The page shell: navigation, the API token field, ``body`` and the page's data for ``studio.js``."""
    nav = "".join(
        f'<a href="{href}" class="{"active" if label.lower() == page else ""}">{label}</a>' for href, label in NAV
    )
    payload = html.escape(json.dumps(data or {}), quote=False)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} · DeepSynth Studio</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/studio.css"></head>
<body data-page="{page}">
<header><span class="brand">DeepSynth Studio</span><nav>{nav}</nav>
<label class="token">API token <input id="token" type="password" autocomplete="off"
 placeholder="DEEPSYNTH_API_TOKEN"></label><a href="/docs" class="api">API</a></header>
<main>{body}</main>
<script id="page-data" type="application/json">{payload}</script>
<script src="/static/studio.js"></script></body></html>"""


def _input(key: dict[str, Any], value: Any) -> str:
    name, kind = html.escape(key["key"]), key["type"]
    options = [o.strip() for o in kind.split("|")]
    if kind == "bool":
        checked = " checked" if value else ""
        return f'<input type="checkbox" name="{name}" data-kind="bool"{checked}>'
    if options and all(o.startswith('"') or o in ("null",) or o.isdigit() for o in options) and len(options) > 1:
        choices = "".join(
            f'<option value="{html.escape(o if o != "null" else "null")}"'
            f"{' selected' if json.dumps(value) == o else ''}>{html.escape(o.strip(chr(34)))}</option>"
            for o in options
        )
        return f'<select name="{name}" data-kind="json">{choices}</select>'
    if kind in ("int", "float"):
        return f'<input type="number" step="any" name="{name}" data-kind="number" value="{html.escape(str(value))}">'
    if kind in ("str", "str | null"):
        shown = "" if value is None else str(value)
        return f'<input type="text" name="{name}" data-kind="{kind}" value="{html.escape(shown)}">'
    return f'<input type="text" name="{name}" data-kind="yaml" value="{html.escape(json.dumps(value))}">'


def configure(configs_dir: Path, config: str, **_: Any) -> str:
    """The configuration editor: config and preset pickers, every knob with its help, validation and estimate."""
    path = configs.config_path(configs_dir, config)
    values = configs.values(path)
    sections = []
    for section in configs.knob_sections():
        rows = "".join(
            f'<div class="knob" data-key="{html.escape(k["key"])}"><label>{html.escape(k["key"])}'
            f'<span class="type">{html.escape(k["type"])}</span></label>{_input(k, values.get(k["key"]))}'
            f'<p class="help">{html.escape(k["help"])}</p><p class="error" hidden></p></div>'
            for k in section["keys"]
        )
        opened = " open" if section["name"] in ("train", "run") else ""
        sections.append(
            f'<details class="section"{opened}><summary>{html.escape(section["name"])} — '
            f"{html.escape(section['title'])}</summary>{rows}</details>"
        )
    names = "".join(
        f"<option{' selected' if n == config else ''}>{html.escape(n)}</option>"
        for n in configs.config_names(configs_dir)
    )
    presets = "".join(f"<option>{html.escape(p['name'])}</option>" for p in configs.presets())
    body = f"""
<section class="toolbar">
 <label>Config <select id="config-picker">{names}</select></label>
 <label>LoRA preset <select id="preset-picker"><option value="">—</option>{presets}</select></label>
 <span id="validation" class="status">checking…</span>
 <label>Save as <input id="save-name" placeholder="my-config"></label><button id="save">Save</button>
 <button id="launch" class="primary">Launch run</button>
</section>
<div class="columns"><form id="knobs" data-config="{html.escape(config)}">{"".join(sections)}</form>
<aside id="estimate"><h2>Estimate</h2><div id="estimate-body">…</div></aside></div>"""
    data = {"config": config, "values": values, "presets": configs.presets()}
    return layout("configure", "Configure", body, data)


def runs(**_: Any) -> str:
    """Runs: the job list and a live view of the selected job (steps, loss curve, log)."""
    body = """<div class="columns"><section><h2>Runs</h2><table id="runs"><thead><tr><th>job</th><th>what</th>
<th>state</th><th>exit</th></tr></thead><tbody></tbody></table></section>
<section id="run-detail"><h2>Select a run</h2></section></div>"""
    return layout("runs", "Runs", body)


def registry(**_: Any) -> str:
    """Registry: models and versions, aliases, metrics; compare, promote, download."""
    body = """<h2>Registered models</h2><div id="models">loading…</div>
<section class="toolbar"><button id="compare">Compare the two selected</button>
<label>Alias <input id="alias" value="champion"></label><label>Reason <input id="reason" size="40"></label>
<button id="promote">Promote the selected</button></section><div id="compare-result"></div>"""
    return layout("registry", "Registry", body)


def merge(**_: Any) -> str:
    """Merge: choose versions, weights, method and density; the merge runs as a job."""
    body = """<h2>Merge adapters</h2><div id="merge-sources">loading…</div>
<section class="toolbar"><label>Method <select id="method"><option>linear</option><option>ties</option>
<option>dare_linear</option><option>cat</option></select></label>
<label>Weights <input id="weights" placeholder="0.5,0.5"></label>
<label>Density <input id="density" placeholder="0.5"></label>
<label>Register as <input id="merge-name" placeholder="(first source's model)"></label>
<button id="merge" class="primary">Merge</button></section><div id="merge-result"></div>"""
    return layout("merge", "Merge", body)


def playground(**_: Any) -> str:
    """Playground: a text or page images, summarized by one or two versions side by side."""
    body = """<h2>Playground</h2><section class="toolbar"><label>Version A <select id="version-a"></select></label>
<label>Version B <select id="version-b"><option value="">—</option></select></label>
<label>Page images <input id="images" type="file" accept="image/png,image/jpeg" multiple></label>
<button id="summarize" class="primary">Summarize</button></section>
<textarea id="text" rows="8" placeholder="Paste a text to summarize"></textarea>
<div id="summaries" class="columns"></div>"""
    return layout("playground", "Playground", body)


PAGES = {"/": configure, "/runs": runs, "/registry": registry, "/merge": merge, "/playground": playground}
