// DeepSynth Studio: the live parts of the server-rendered pages (vanilla JS, no external resources).
"use strict";
const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
const tokenInput = $("#token");
tokenInput.value = sessionStorage.getItem("deepsynth-token") || "";
tokenInput.addEventListener("change", () => sessionStorage.setItem("deepsynth-token", tokenInput.value));

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (tokenInput.value) headers.Authorization = "Bearer " + tokenInput.value;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail : data.detail?.message || JSON.stringify(data.detail);
    throw new Error(detail || response.statusText);
  }
  return data;
}
const pageData = JSON.parse($("#page-data").textContent);
const num = (n) => (n == null ? "" : Number.isInteger(n) ? String(n) : Number(n).toPrecision(4));
const fmt = (n) => (n == null ? "" : Number(n).toLocaleString("en-US"));

// ---- configure ----
function readValue(input) {
  const kind = input.dataset.kind;
  if (kind === "bool") return input.checked;
  if (kind === "number") return input.value === "" ? null : Number(input.value);
  if (kind === "str") return input.value;
  if (kind === "str | null") return input.value === "" ? null : input.value;
  try { return JSON.parse(input.value); } catch { return input.value; }
}
function changedValues() {
  const values = {};
  document.querySelectorAll("#knobs [name]").forEach((input) => {
    const value = readValue(input);
    if (JSON.stringify(value) !== JSON.stringify(pageData.values[input.name])) values[input.name] = value;
  });
  return values;
}
function showEstimate(e) {
  const rows = Object.entries(e.full_size).map(([variant, r]) => {
    const parts = Object.entries(r.gb_by_part_and_dtype).map(([part, d]) =>
      `${part}: ${Object.entries(d).map(([t, gb]) => `${gb} GB ${t}`).join(", ")}`).join("<br>");
    return `<tr><th>${variant}</th><td>${r.total_gb} GB</td><td>${fmt(r.trainable_params)}</td><td class="muted">${parts}</td></tr>`;
  }).join("");
  $("#estimate-body").innerHTML = `<p>Trainable parameters (${esc(e.model_name)}): <strong id="trainable">${fmt(e.trainable_params)}</strong>
    of ${fmt(e.total_params)}</p><p class="muted">Weight memory of the full-size ${esc(e.full_size_model)} in ${esc(e.dtype)}:</p>
    <table><tr><th>variant</th><th>weights</th><th>trainable</th><th>by part and dtype</th></tr>${rows}</table>
    <ul class="muted">${e.estimated.map((s) => `<li>estimate: ${esc(s)}</li>`).join("")}</ul>`;
}
let checkTimer = null, checkSeq = 0;
async function check() {
  const values = changedValues(), config = pageData.config, seq = ++checkSeq;
  document.querySelectorAll(".knob.bad").forEach((k) => { k.classList.remove("bad"); k.querySelector(".error").hidden = true; });
  const status = $("#validation");
  try {
    const result = await api("POST", "/api/configs/validate", { config, values });
    if (seq !== checkSeq) return; // a newer edit is being checked
    status.className = "status " + (result.ok ? "ok" : "bad");
    status.textContent = result.ok ? "valid: the same checks as deepsynth run" : "invalid";
    for (const error of result.errors) {
      const knob = error.key && document.querySelector(`.knob[data-key="${CSS.escape(error.key)}"]`);
      if (knob) { knob.classList.add("bad"); const p = knob.querySelector(".error"); p.textContent = error.message; p.hidden = false; knob.closest("details").open = true; }
      else status.textContent = "invalid: " + error.message;
    }
    if (!result.ok) return;
    const estimate = await api("POST", "/api/configs/estimate", { config, values });
    if (seq === checkSeq) showEstimate(estimate);
  } catch (err) { status.className = "status bad"; status.textContent = err.message; }
}
function scheduleCheck() { clearTimeout(checkTimer); checkTimer = setTimeout(check, 300); }
function setKnob(key, value) {
  const input = document.querySelector(`#knobs [name="${CSS.escape(key)}"]`);
  if (!input) return;
  if (input.dataset.kind === "bool") input.checked = Boolean(value);
  else if (input.tagName === "SELECT") input.value = JSON.stringify(value);
  else input.value = input.dataset.kind === "yaml" ? JSON.stringify(value) : String(value ?? "");
}
function initConfigure() {
  $("#knobs").addEventListener("input", scheduleCheck);
  $("#knobs").addEventListener("change", scheduleCheck);
  $("#config-picker").addEventListener("change", (e) => { location.search = "?config=" + encodeURIComponent(e.target.value); });
  $("#preset-picker").addEventListener("change", (e) => {
    const preset = pageData.presets.find((p) => p.name === e.target.value);
    if (preset) { for (const [key, value] of Object.entries(preset.settings)) setKnob(key, value); scheduleCheck(); }
  });
  $("#save").addEventListener("click", async () => {
    try { const r = await api("POST", "/api/configs/save", { config: pageData.config, values: changedValues(), name: $("#save-name").value });
      $("#validation").textContent = "saved " + r.path; } catch (err) { $("#validation").textContent = err.message; }
  });
  $("#launch").addEventListener("click", async () => {
    try { const job = await api("POST", "/api/runs", { config: pageData.config, values: changedValues() }); location.href = "/runs#" + job.id; }
    catch (err) { $("#validation").className = "status bad"; $("#validation").textContent = err.message; }
  });
  check();
}

// ---- runs ----
function lossSvg(points) {
  if (!points.length) return '<p class="muted">no loss logged yet</p>';
  const w = 420, h = 160, xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs) || 1, Math.min(...ys), Math.max(...ys)];
  const sx = (x) => 30 + ((x - x0) / (x1 - x0 || 1)) * (w - 40), sy = (y) => h - 20 - ((y - y0) / (y1 - y0 || 1)) * (h - 30);
  const path = points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
  return `<svg class="loss" width="${w}" height="${h}"><path d="${path}" fill="none" stroke="#2f5fd0" stroke-width="2"/>
    <text x="4" y="14" font-size="11">${y1.toFixed(3)}</text><text x="4" y="${h - 6}" font-size="11">${y0.toFixed(3)}</text>
    <text x="${w - 70}" y="${h - 6}" font-size="11">step ${x1}</text></svg>`;
}
async function showRun(id) {
  document.querySelectorAll("tr[data-job]").forEach((tr) => tr.classList.toggle("selected", tr.dataset.job === id));
  const [job, log] = await Promise.all([api("GET", `/api/runs/${id}`), api("GET", `/api/runs/${id}/log?lines=40`)]);
  const live = job.live || { steps: {}, loss: [] };
  const steps = Object.entries(live.steps).map(([s, v]) => `<tr><td>${esc(s)}</td><td>${esc(v.status)}</td><td>${v.duration_s ?? ""}</td></tr>`).join("");
  const result = job.result?.registration ? `<p>Registered <strong class="registered">${esc(job.result.registration.name)} v${esc(job.result.registration.version)}</strong></p>` : "";
  $("#run-detail").innerHTML = `<h2>${esc(job.title)} <span class="state state-${job.state}">${job.state}</span></h2>
    <p class="muted">job ${esc(job.id)} ${job.run_name ? "· pipeline run " + esc(job.run_name) : ""} ${job.exit_code != null ? "· exit " + job.exit_code : ""}</p>
    ${result}${job.state === "running" || job.state === "queued" ? '<button id="cancel">Cancel (SIGTERM)</button>' : ""}
    <h3>Steps</h3><table>${steps || '<tr><td class="muted">no steps yet</td></tr>'}</table>
    <h3>Loss</h3>${lossSvg(live.loss)}<h3>Log</h3><pre class="log">${esc(log.log)}</pre>`;
  const cancel = $("#cancel");
  if (cancel) cancel.addEventListener("click", () => api("POST", `/api/runs/${id}/cancel`).then(() => showRun(id)));
}
async function refreshRuns() {
  const jobs = await api("GET", "/api/runs");
  $("#runs tbody").innerHTML = jobs.map((j) => `<tr data-job="${esc(j.id)}"><td>${esc(j.id)}</td><td>${esc(j.title)}</td>
    <td class="state-${j.state}">${j.state}</td><td>${j.exit_code ?? ""}</td></tr>`).join("");
  document.querySelectorAll("tr[data-job]").forEach((tr) => tr.addEventListener("click", () => { location.hash = tr.dataset.job; }));
  const id = location.hash.slice(1) || jobs[0]?.id;
  if (id) await showRun(id);
}
function initRuns() { refreshRuns(); setInterval(refreshRuns, 2000); window.addEventListener("hashchange", refreshRuns); }

// ---- registry, merge, playground ----
async function versions() {
  const models = await api("GET", "/api/models").catch(() => []);
  const listed = models.flatMap((m) => m.versions.map((v) => ({ ...v, name: m.name, ref: `${m.name}/${v.version}` })));
  // the list carries aliases and metrics; each version's tags (parents of a merge, promotion reason) come with it alone
  return Promise.all(listed.map(async (v) => (v.tags ? v : { ...v, tags: (await api("GET",
    `/api/models/${encodeURIComponent(v.name)}/versions/${v.version}`).catch(() => ({}))).tags || {} })));
}
function versionTable(rows, input) {
  return `<table><tr><th></th><th>version</th><th>aliases</th><th>rouge_l</th><th>tags</th><th></th></tr>${rows.map((v) =>
    `<tr><td>${input(v)}</td><td>${esc(v.ref)}</td><td>${esc((v.aliases || []).join(", "))}</td>
    <td>${v.metrics?.rouge_l?.toFixed?.(4) ?? ""}</td><td class="muted">${esc(Object.entries(v.tags || {}).filter(([k]) => k.startsWith("merge.") || k === "promotion_reason").map(([k, x]) => k + "=" + x).join(" "))}</td>
    <td><a href="/api/models/${encodeURIComponent(v.name)}/versions/${v.version}/download">download</a></td></tr>`).join("")}</table>`;
}
async function initRegistry() {
  const rows = await versions();
  $("#models").innerHTML = rows.length ? versionTable(rows, (v) => `<input type="checkbox" class="pick" value="${esc(v.ref)}">`) : "no registered versions yet";
  const picked = () => [...document.querySelectorAll(".pick:checked")].map((i) => i.value);
  $("#compare").addEventListener("click", async () => {
    const [a, b] = picked();
    try { const c = await api("GET", `/api/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
      $("#compare-result").innerHTML = `<h3>${esc(a)} vs ${esc(b)}</h3><table><tr><th>metric</th><th>A</th><th>B</th><th>B − A</th></tr>${Object.entries(c.metrics).map(([k, m]) =>
        `<tr><td>${esc(k)}</td><td>${num(m.a)}</td><td>${num(m.b)}</td><td>${num(m.difference)}</td></tr>`).join("")}</table>`;
    } catch (err) { $("#compare-result").textContent = err.message; }
  });
  $("#promote").addEventListener("click", async () => {
    const [ref] = picked(); const [name, version] = ref.split("/");
    try { await api("POST", `/api/models/${encodeURIComponent(name)}/versions/${version}/promote`, { alias: $("#alias").value, reason: $("#reason").value }); location.reload(); }
    catch (err) { $("#compare-result").textContent = err.message; }
  });
}
async function initMerge() {
  const rows = await versions();
  $("#merge-sources").innerHTML = rows.length ? versionTable(rows, (v) => `<input type="checkbox" class="pick" value="${esc(v.ref)}">`) : "no registered versions yet";
  $("#merge").addEventListener("click", async () => {
    const sources = [...document.querySelectorAll(".pick:checked")].map((i) => i.value);
    const weights = $("#weights").value ? $("#weights").value.split(",").map(Number) : null;
    const density = $("#density").value ? Number($("#density").value) : null;
    try { const job = await api("POST", "/api/adapters/merge", { sources, weights, method: $("#method").value, density, name: $("#merge-name").value || null });
      location.href = "/runs#" + job.id; } catch (err) { $("#merge-result").textContent = err.message; }
  });
}
async function initPlayground() {
  const rows = await versions();
  const options = rows.map((v) => `<option value="${esc(v.ref)}">${esc(v.ref)} ${esc((v.aliases || []).join(","))}</option>`).join("");
  $("#version-a").innerHTML = options; $("#version-b").innerHTML += options;
  $("#summarize").addEventListener("click", async () => {
    const files = [...$("#images").files];
    const images = await Promise.all(files.map((f) => new Promise((ok) => { const r = new FileReader(); r.onload = () => ok(r.result); r.readAsDataURL(f); })));
    const versionsChosen = [$("#version-a").value, $("#version-b").value].filter(Boolean);
    $("#summaries").innerHTML = '<p class="muted">summarizing…</p>';
    try { const r = await api("POST", "/api/playground", { versions: versionsChosen, text: $("#text").value || null, images: images.length ? images : null });
      $("#summaries").innerHTML = r.results.map((x) => `<div class="card"><h3>${esc(x.version)}</h3><p class="summary">${esc(x.summary) || '<span class="muted">(empty summary)</span>'}</p></div>`).join("");
    } catch (err) { $("#summaries").textContent = err.message; }
  });
}
({ configure: initConfigure, runs: initRuns, registry: initRegistry, merge: initMerge, playground: initPlayground })[document.body.dataset.page]?.();
