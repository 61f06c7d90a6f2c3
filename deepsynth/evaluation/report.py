"""HTML evaluation report: metric table, training loss curve, ROUGE distribution, sample pages.

Plots are drawn with matplotlib's Agg backend and embedded as base64 PNGs, so the report is one
self-contained file (it is logged to MLflow and shown as a ZenML visualization).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepsynth.data.rendered import RenderedDocument
from deepsynth.evaluation.metrics import SYSTEM_METRICS
from deepsynth.evaluation.result import ADAPTER, BASE, VARIANT_PREFIX, EvaluationResult
from deepsynth.report_header import header_html

THUMB_WIDTH = 240


def _png_b64(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def loss_curve_png(loss_curve: Sequence[Sequence[float]]) -> str | None:
    """Base64 PNG of the training loss per step (``[[step, loss, lr], ...]``), or ``None`` without points."""
    points = [(p[0], p[1]) for p in loss_curve if p and math.isfinite(float(p[1]))]
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    return _png_b64(fig)


def rouge_distribution_png(result: EvaluationResult, metric: str = "rouge_l") -> str | None:
    """Base64 PNG histogram of per-document ``metric`` for each system."""
    systems = list(result.systems)
    if not result.rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    bins = [i / 20 for i in range(21)]
    for system in systems:
        ax.hist([r[metric] for r in result.rows_for(system)], bins=bins, alpha=0.5, label=system)
    ax.set_xlabel(f"{metric} per document")
    ax.set_ylabel("documents")
    ax.legend()
    return _png_b64(fig)


def thumbnail_b64(png: bytes, width: int = THUMB_WIDTH) -> str:
    """Base64 PNG of a page scaled to ``width`` pixels."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.thumbnail((width, width * 4))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else html.escape(str(value))
    return html.escape(str(value))


def _table(result: EvaluationResult) -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in SYSTEM_METRICS)
    body = []
    for system, metrics in result.systems.items():
        cls = ' class="adapter"' if system == ADAPTER or system.startswith(VARIANT_PREFIX) else ""
        cells = "".join(f"<td>{_fmt(metrics.get(m, float('nan')))}</td>" for m in SYSTEM_METRICS)
        body.append(f"<tr{cls}><th>{html.escape(system)}</th>{cells}</tr>")
    return f"<table><tr><th>system</th>{head}</tr>{''.join(body)}</table>"


def _samples(result: EvaluationResult, documents: Sequence[RenderedDocument], max_samples: int) -> str:
    by_system = {s: {r["id"]: r for r in result.rows_for(s)} for s in result.systems}
    cards = []
    for doc in list(documents)[:max_samples]:
        thumb = (
            f'<img alt="page 1 of {html.escape(doc.id)}" src="data:image/png;base64,{thumbnail_b64(doc.pages[0])}">'
            if doc.pages
            else ""
        )
        outputs = "".join(
            f"<dt>{html.escape(s)} (ROUGE-L "
            f"{_fmt(rows[doc.id]['rouge_l'])})</dt>"
            f"<dd>{html.escape(rows[doc.id]['prediction']) or '<em>(empty)</em>'}</dd>"
            for s, rows in by_system.items()
            if doc.id in rows
        )
        cards.append(
            f'<div class="sample"><div>{thumb}</div><div><h3>{html.escape(doc.id)}</h3><dl>'
            f"<dt>reference</dt><dd>{html.escape(doc.summary or '')}</dd>{outputs}</dl></div></div>"
        )
    return "".join(cards)


def verdict(result: EvaluationResult, metric: str = "rouge_l") -> tuple[bool, str]:
    """Whether the adapter beats every other system on ``metric``, and that said in one plain sentence.

    For several adapters: whether each beats every baseline, and which one scores best.
    """
    if result.variants:
        return _variants_verdict(result, metric)
    ours = result.systems[ADAPTER].get(metric, float("nan"))
    names = {BASE: "the untrained base model"}
    ahead = [
        (names.get(system, f"the {system} baseline"), metrics[metric])
        for system, metrics in result.systems.items()
        if system != ADAPTER and metric in metrics and not ours > metrics[metric]
    ]
    if not ahead:
        return True, f"The adapter beats every baseline on {metric} ({ours:.4f})."
    others = " and ".join(f"{name} ({score:.4f})" for name, score in ahead)
    return False, f"The adapter scores below {others} on {metric} ({ours:.4f}): it is not yet worth deploying."


def _variants_verdict(result: EvaluationResult, metric: str) -> tuple[bool, str]:
    scores = {name: result.variant_metrics(name).get(metric, float("nan")) for name in result.variants}
    baselines = {
        system: metrics[metric]
        for system, metrics in result.systems.items()
        if not system.startswith(VARIANT_PREFIX) and metric in metrics
    }
    best = max(scores, key=lambda name: scores[name] if math.isfinite(scores[name]) else float("-inf"))
    behind = [name for name, score in scores.items() if not all(score > b for b in baselines.values())]
    lead = f"Best of {len(scores)} adapters on {metric}: {best} ({scores[best]:.4f})."
    if not behind:
        return True, f"{lead} Every adapter beats every baseline."
    return False, f"{lead} Below a baseline ({', '.join(baselines)}): {', '.join(behind)}; not yet worth deploying."


def render_html(
    result: EvaluationResult,
    *,
    loss_curve: Sequence[Sequence[float]] | None = None,
    documents: Sequence[RenderedDocument] = (),
    title: str = "DeepSynth evaluation",
    max_samples: int = 4,
    context: dict[str, Any] | None = None,
) -> str:
    """The evaluation report as one self-contained HTML page.

    Args:
        result: From :func:`deepsynth.evaluation.evaluate`.
        loss_curve: The training run's ``loss_curve`` (``[[step, loss, lr], ...]``).
        documents: The evaluated documents (first pages become thumbnails).
        title: Page title.
        max_samples: Documents shown with reference and generated summaries side by side.
        context: What was evaluated (run, model version, data source, mode), shown as the header.

    Returns:
        HTML text.
    """
    loss = loss_curve_png(loss_curve or [])
    dist = rouge_distribution_png(result)
    figures = "".join(
        f'<figure><img alt="{html.escape(cap)}" src="data:image/png;base64,{img}"><figcaption>'
        f"{html.escape(cap)}</figcaption></figure>"
        for cap, img in (("training loss", loss), ("ROUGE-L distribution", dist))
        if img
    )
    config = html.escape(", ".join(f"{k}={v}" for k, v in result.config.items() if k != "generation"))
    good, sentence = verdict(result)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>
body {{ font-family: sans-serif; margin: 1.5em; }} table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }} tr.adapter {{ background: #eef6ff; }}
.verdict {{ padding: .5em .8em; border-radius: .3em; }} .good {{ background: #e3f6e3; }} .bad {{ background: #fbdddd; }}
table.report-header th {{ text-align: left; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }} .sample {{ display: flex; gap: 1em; margin-bottom: 1em;
border-top: 1px solid #ddd; padding-top: .5em; }} dt {{ font-weight: bold; }} dd {{ margin: 0 0 .4em 1em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>{header_html(context or {})}
<p class="verdict {"good" if good else "bad"}">{html.escape(sentence)}</p><p>{config}</p>
<h2>Metrics</h2>{_table(result)}
<h2>Plots</h2>{figures or "<p>(no plots)</p>"}
<h2>Samples</h2>{_samples(result, documents, max_samples) or "<p>(no documents)</p>"}
</body></html>
"""


def write_html(path: str | os.PathLike, html_text: str) -> Path:
    """Write the report and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_text, encoding="utf-8")
    return path
