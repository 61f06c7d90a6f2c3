"""Self-contained HTML view of a validation report (ZenML visualization, MLflow artifact)."""

from __future__ import annotations

from html import escape

from deepsynth.report_header import header_html
from deepsynth.validation.report import ValidationReport

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.4em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top;font-size:.9em}
th{background:#f3f3f3}
.pass{background:#e3f6e3}.fail{background:#fbdddd}.warn{background:#fff2cc}
.badge{display:inline-block;padding:.2em .7em;border-radius:.3em;font-weight:bold}
"""

MAX_QUARANTINE_ROWS = 500  # keeps the page small for huge quarantines; the artifact has them all


def _status(check) -> tuple[str, str]:
    if check.success:
        return "pass", "pass"
    return ("fail", "FAIL") if check.level == "dataset" else ("warn", f"{check.unexpected_count} quarantined")


def render_report_html(report: ValidationReport) -> str:
    """Render ``report`` as one self-contained HTML page (inline CSS, no scripts or links).

    Args:
        report: A validation report.

    Returns:
        The HTML document as a string.
    """
    verdict = "pass" if report.success else "fail"
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>DeepSynth validation report</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Validation report <span class='badge {verdict}'>{'PASSED' if report.success else 'FAILED'}</span></h1>",
        header_html(report.context),
        "<table><tr><th>ingested</th><th>valid</th><th>quarantined</th><th>pages</th><th>truncated</th>"
        "<th>missing glyphs</th></tr>",
        f"<tr><td>{report.ingested}</td><td>{report.valid}</td><td>{report.quarantined}</td><td>{report.pages}</td>"
        f"<td>{report.truncated}</td><td>{len(report.missing_glyphs)}</td></tr></table>",
    ]
    if report.failures:
        parts.append(
            "<h2>Failures</h2><ul>" + "".join(f"<li class='fail'>{escape(f)}</li>" for f in report.failures) + "</ul>"
        )
    parts.append(
        "<h2>Checks</h2><table><tr><th>check</th><th>level</th><th>status</th><th>observed</th>"
        "<th>required</th><th>expectation</th></tr>"
    )
    for check in report.checks:
        css, label = _status(check)
        observed = f"{check.observed:.4f}" if isinstance(check.observed, float) else check.observed
        parts.append(
            f"<tr class='{css}'><td>{escape(check.name)}</td><td>{escape(check.level)}</td><td>{escape(label)}</td>"
            f"<td>{escape(str(observed))}</td><td>{escape(check.threshold)}</td>"
            f"<td>{escape(check.expectation)}</td></tr>"
        )
    parts.append("</table>")
    if report.missing_glyphs:
        parts.append(
            "<h2>Documents with missing glyphs</h2><table><tr><th>id</th><th>split</th><th>code points</th></tr>"
        )
        for doc in report.missing_glyphs[:MAX_QUARANTINE_ROWS]:
            points = " ".join(doc["code_points"])
            parts.append(
                f"<tr><td>{escape(str(doc['id']))}</td><td>{escape(str(doc['split']))}</td>"
                f"<td>{escape(points)}</td></tr>"
            )
        parts.append("</table>")
    parts.append(f"<h2>Quarantine ({report.quarantined})</h2>")
    if report.quarantine:
        parts.append("<table><tr><th>id</th><th>split</th><th>mode</th><th>field</th><th>reason</th></tr>")
        for entry in report.quarantine[:MAX_QUARANTINE_ROWS]:
            ident = entry.get("id")
            if ident is None and entry.get("row") is not None:
                ident = f"{entry.get('file') or ''} row {entry['row']}".strip()
            parts.append(
                "<tr>"
                + "".join(
                    f"<td>{escape(str(v if v is not None else ''))}</td>"
                    for v in (ident, entry.get("split"), entry.get("mode"), entry.get("field"), entry.get("reason"))
                )
                + "</tr>"
            )
        parts.append("</table>")
        if report.quarantined > MAX_QUARANTINE_ROWS:
            more = report.quarantined - MAX_QUARANTINE_ROWS
            parts.append(f"<p>... and {more} more (see the quarantine artifact).</p>")
    else:
        parts.append("<p>No document was quarantined.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
