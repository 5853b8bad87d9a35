"""One self-contained HTML page per monitor run: charts inline (base64 PNG), no external assets.

The team's production dashboard list, in order: P50/P95/P99, volume, error rate,
low-confidence (and fallback) rate, intent distribution over time, KL, sampled accuracy (with
the label-free estimate), rare-class recall, message drift and length; model switches and
rollbacks from the registry history on every time axis and in a table; then the alerts, what
was unavailable and why, the reference, and the files read (skipped and torn lines).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mangaassist.monitor.charts import CHARTS, kinds
from mangaassist.monitor.lines import fmt, short_time

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1150px}
h1{font-size:22px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.muted{color:#777}.page{color:#b00;font-weight:600}
.warn{color:#b60}.info{color:#447}img{max-width:100%}code{font-size:12px}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], raw: bool = False) -> str:
    cells = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else _e(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{cells}</tr>{body}</table>"


def _alerts(report: Mapping[str, Any]) -> str:
    events = report["alerts"]
    if not events:
        return "<p>No alert fired.</p>"
    rows = []
    for ev in events:
        sev = f'<span class="{_e(ev["severity"])}">{_e(ev["severity"])}</span>'
        if ev["event"] == "fire":
            what = f"fired ({ev['windows']} window(s){', still active' if ev['active'] else ''})"
            detail = _e(" ".join(ev["met"])) + f'<br><span class="muted">{_e(ev["reason"])}</span>'
            action = _e(ev.get("triggers", ""))
        else:
            what, detail = "cleared", _e(f"{ev['clean_windows']} clean windows after firing")
            action = ""
        rows.append(
            [
                _e(ev["rule"]),
                _e(what),
                sev,
                _e(f"{ev['window']} {short_time(ev['start'])}"),
                _e(ev.get("model") or ""),
                detail,
                f"<code>{action}</code>",
            ]
        )
    head = ["rule", "event", "severity", "window", "model", "signals", "action"]
    return _table(head, rows, raw=True)


def _switches(report: Mapping[str, Any]) -> str:
    sw = report["switches"]
    if not sw:
        return '<p class="muted">No registry history given (--registry DIR) or no switches.</p>'
    rows = [[short_time(s["time"]), s["event"], s["version"], s.get("from") or ""] for s in sw]
    return _table(["time", "event", "to", "from"], rows)


def _summary(report: Mapping[str, Any]) -> str:
    kinds = list(report["windows_seconds"])
    rows = []
    for kind in kinds:
        ws = [w for w in report["windows"] if w["kind"] == kind]
        if not ws:
            continue
        last = ws[-1]
        shown = report["lines"].get(kind, [])
        rows.append(
            [
                kind,
                len(ws),
                short_time(last["start"]),
                last.get("model") or "",
                " ".join(f"{s}={fmt(s, last.get(s))}" for s in shown),
            ]
        )
    return _table(["window", "count", "last start", "model", "last window's signals"], rows)


def _reference(report: Mapping[str, Any]) -> str:
    ref = report["reference"]
    keys = ("source", "kind", "texts", "text_file", "vocab_size", "jp_share", "new_vocab_share")
    keys += ("len_mean", "len_p95")
    rows = [[k, ref.get(k)] for k in keys]
    rows.append(["rare classes", ", ".join(ref["rare"]) or "none"])
    rows.append(["shares", ", ".join(f"{k} {100 * v:.1f}%" for k, v in ref["shares"].items())])
    rows += [["note", n] for n in ref.get("notes", [])]
    return _table(["reference", "value"], rows)


def _files(report: Mapping[str, Any]) -> str:
    logs = report["logs"]
    rows = [
        [f["path"], f["lines"], f["rows"], f["skipped"], "yes" if f["torn"] else ""]
        for f in logs["files"]
    ]
    head = (
        f"<p>{logs['champion_lines']} champion lines, {logs['shadow_lines']} shadow lines "
        f"(not monitored), {logs['skipped_lines']} skipped, {logs['torn_lines']} torn; "
        f"messages logged as: {_e(logs['text'])}.</p>"
    )
    return head + _table(["file", "lines", "parsed", "skipped", "torn last line"], rows)


def render_dashboard(report: Mapping[str, Any]) -> str:
    """The whole page as one string (charts embedded as ``data:image/png;base64``)."""
    windows = report["windows"]
    # The logs' span: the smallest windows (a weekly window runs past the data's last day).
    fine = [w for w in windows if w["kind"] == kinds(report)[0]] or windows
    span = (
        f"{short_time(min(w['start'] for w in fine))} to {short_time(max(w['end'] for w in fine))}"
        if fine
        else "no windows"
    )
    models = sorted({m for w in windows for m in w.get("models", {})})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>MangaAssist monitor</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>MangaAssist production monitor</h1>",
        f"<p>{_e(span)} &middot; models {_e(', '.join(models))} &middot; generated "
        f"{_e(report['generated_at'])} &middot; config <code>{_e(report['config'])}</code></p>",
        "<h2>Latest windows</h2>",
        _summary(report),
        "<h2>Alerts</h2>",
        _alerts(report),
        "<h2>Model switches and rollbacks</h2>",
        _switches(report),
    ]
    for title, chart in CHARTS:
        parts += [
            f"<h2>{_e(title)}</h2>",
            f"<img alt='{_e(title)}' src='data:image/png;base64,{chart(report)}'>",
        ]
    if report["unavailable"]:
        parts += [
            "<h2>Unavailable signals</h2>",
            _table(["signal", "why"], report["unavailable"].items()),
        ]
    if report.get("labels"):
        lab = report["labels"]
        matched = f"{lab['matched']} of {lab['labels']} labels matched"
        parts.append(f"<p>Labelled sample {_e(lab['file'])}: {matched}.</p>")
    parts += ["<h2>Reference</h2>", _reference(report), "<h2>Logs read</h2>", _files(report)]
    parts.append("</body></html>\n")
    return "\n".join(parts)
