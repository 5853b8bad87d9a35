"""The HTML page of ``mangaassist shadow-report``: one self-contained file, no external assets.

Every value that comes from the log (message text, intents, versions, request ids) goes
through :func:`html.escape`: logged text is whatever users typed, ``<script>`` included.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mangaassist.atomic import write_text

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 7px}
th{background:#f4f4f4;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
code,.line{font-family:ui-monospace,monospace}.line{background:#f6f8fa;padding:.6em;display:block}
.bad{color:#b00020;font-weight:600}.good{color:#1b7f3b;font-weight:600}.muted{color:#777}
.matrix td{text-align:center;min-width:2.2em}.matrix td.diag{background:#eee;color:#555}
.bar{display:inline-block;height:.8em;background:#4a7bd0;vertical-align:middle}
td.text{max-width:480px;word-break:break-word}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _p(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "–" if x is None else format(x, fmt)


class _Num(str):
    """A right-aligned (numeric) table cell."""


def _n(x: Any) -> _Num:
    return _Num(x)


def _fb(fallback: bool) -> str:
    return " (fallback)" if fallback else ""


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """Cells are HTML already (escaped by the caller); :class:`_Num` cells align right."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if isinstance(c, _Num) else f"<td>{c}</td>" for c in r)
        + "</tr>"
        for r in rows
    )
    return f'<table class="{cls}"><tr>{th}</tr>{body}</table>'


def _flag(bad: bool, yes: str, no: str) -> str:
    return f'<span class="bad">{yes}</span>' if bad else f'<span class="good">{no}</span>'


def _summary(r: Mapping[str, Any], line: str) -> str:
    s = r["settings"]
    rows = [
        [
            "champion / candidate",
            f"<code>{_e(r['champion_version'])}</code> / <code>{_e(r['candidate_version'])}</code>",
        ],
        ["paired messages", _n(r["n_paired"])],
        ["champion messages without a shadow answer", _n(r["n_unpaired_champion"])],
        ["shadow answers without a champion line", _n(r["n_orphan_shadow"])],
        ["agreement with champion", _n(_p(r["agreement_with_champion"]))],
        [
            f"min_agreement {_p(s['min_agreement'])}",
            _flag(not r["meets_min_agreement"], "below", "met"),
        ],
        ["critical intent regression", _flag(r["critical_intent_regression"], "yes", "no")],
    ]
    if r.get("other_pairs"):
        others = ", ".join(f"{_e(a)}&rarr;{_e(b)}" for a, b in r["other_pairs"])
        rows.append(["other pairs in the log (not in this report)", others])
    files = r.get("logs", {}).get("files", [])
    if files:
        rows.append(["log files", "<br>".join(f"<code>{_e(f)}</code>" for f in files)])
    return f'<span class="line">{_e(line)}</span>' + _table(["", ""], rows)


def _per_intent(r: Mapping[str, Any]) -> str:
    rows = []
    for name, v in r["per_intent"].items():
        width = 0 if v["agreement"] is None else round(150 * v["agreement"])
        bar = f'<span class="bar" style="width:{width}px"></span> {_p(v["agreement"])}'
        rows.append([_e(name), _n(v["n"]), bar])
    return _table(["champion intent", "messages", "candidate agrees"], rows)


def _matrix(r: Mapping[str, Any]) -> str:
    names, counts = r["matrix"]["labels"], r["matrix"]["counts"]
    off = [c for i, row in enumerate(counts) for j, c in enumerate(row) if i != j]
    top = max(off, default=0) or 1
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    body = []
    for i, row in enumerate(counts):
        cells = []
        for j, c in enumerate(row):
            if i == j:
                cells.append(f'<td class="diag">{c}</td>')
            else:  # shade by share of the largest disagreement cell: the worst stands out
                alpha = 0 if c == 0 else 0.15 + 0.85 * c / top
                cells.append(f'<td style="background:rgba(208,60,60,{alpha:.2f})">{c or ""}</td>')
        body.append(f"<tr><th>{_e(names[i])}</th>{''.join(cells)}</tr>")
    return (
        "<p class=\"muted\">Rows: the champion's intent; columns: the candidate's. The grey "
        "diagonal counts agreements.</p>"
        f'<table class="matrix"><tr><th>champion \\ candidate</th>{head}</tr>'
        f"{''.join(body)}</table>"
    )


def _messages(r: Mapping[str, Any]) -> str:
    shown = r["disagreements"][: r["settings"]["max_messages_shown"]]
    rows = []
    for m in shown:
        text = (
            _e(m["text"])
            if m["text"] is not None
            else (
                f'<span class="muted">sha256 {_e(m["text_sha256"])}</span>'
                if m["text_sha256"]
                else '<span class="muted">(not logged)</span>'
            )
        )
        delta = None
        if m["candidate_confidence"] is not None and m["champion_confidence"] is not None:
            delta = m["candidate_confidence"] - m["champion_confidence"]
        rows.append(
            [
                f"<code>{_e(m['request_id'])}</code>#{m['item']}",
                text,
                ("&#9888; " if m["critical"] else "")
                + _e(m["champion_intent"])
                + _fb(m["champion_fallback"]),
                _n(_f(m["champion_confidence"])),
                _e(m["candidate_intent"]) + _fb(m["candidate_fallback"]),
                _n(_f(m["candidate_confidence"])),
                _n(_f(delta, "+.3f")),
            ]
        )
    total = len(r["disagreements"])
    note = f"<p>{total} disagreeing messages, the champion's most confident first"
    note += (
        f"; the first {len(shown)} shown (max_messages_shown).</p>"
        if total > len(shown)
        else ".</p>"
    )
    head = ["request#item", "message", "champion", "conf.", "candidate", "conf.", "&Delta;"]
    return (
        note + '<p class="muted">&#9888; = a critical intent is involved.</p>' + _table(head, rows)
    )


def _deltas(r: Mapping[str, Any]) -> str:
    cd, lat, fb = r["confidence_delta"], r["latency_ms"], r["fallback_rate"]
    conf = _table(
        ["candidate &minus; champion confidence", "mean", "median"],
        [[k, _n(_f(v["mean"], "+.4f")), _n(_f(v["median"], "+.4f"))] for k, v in cd.items()],
    )
    lrows = [
        [role, *(_n(_f(lat[role][q], ".2f")) for q in ("p50", "p95", "p99"))]
        for role in ("champion", "candidate")
    ]
    lrows.append(["delta", *(_n(_f(lat["delta"][q], "+.2f")) for q in ("p50", "p95", "p99"))])
    lt = _table(["latency ms", "P50", "P95", "P99"], lrows)
    ft = _table(["fallback rate", ""], [[k, _n(_p(v))] for k, v in fb.items()])
    return (
        conf + lt + '<p class="muted">Candidate latency is its own compute and queue time, '
        "off the caller's path.</p>" + ft
    )


def _labelled(r: Mapping[str, Any]) -> str:
    lab = r.get("labelled")
    if not lab:
        return "<p>No labelled sample given (<code>--labels SAMPLE.jsonl</code>).</p>"
    rows = [
        [
            role,
            _n(lab[role]["n"]),
            _n(_p(lab[role]["acc"])),
            _n(f"{_p(lab[role]['lo'])} – {_p(lab[role]['hi'])}"),
        ]
        for role in ("champion", "candidate")
    ]
    t = lab["mcnemar"]
    return (
        f"<p>{lab['n']} paired messages carry a label ({lab['n_labels_unmatched']} of the "
        f"{lab['n_labels']} labels match no paired message).</p>"
        + _table(["model", "labelled", "accuracy", "95% interval (Wilson)"], rows)
        + f"<p>McNemar ({_e(t['method'])}): b = {t['b']} champion right and candidate wrong, "
        f"c = {t['c']} the reverse; p = {t['p_value']:.4g} (alpha {lab['alpha']}): "
        f"<b>{_e(lab['verdict'])}</b>.</p>"
    )


def _critical(r: Mapping[str, Any]) -> str:
    s = r["settings"]
    rows = [
        [
            _e(name),
            _n(v["champion_n"]),
            _n(v["flips_away"]),
            _n(_p(v["flip_share"])),
            _n(v["allowed"]),
            _n(v["flips_into"]),
            _flag(v["regression"], "regression", "ok"),
        ]
        for name, v in r["critical"].items()
    ]
    return (
        f"<p>Critical intents: <code>{_e(', '.join(s['critical_intents']))}</code>. A <i>flip "
        "away</i> is a message the champion put in a critical intent and the candidate did not: "
        "promoted, the candidate would take it from its service (escalation: the human agent "
        "queue). Per critical intent, tolerated flips = max(<code>max_flips_away</code> = "
        f"{s['max_flips_away']}, floor(<code>max_flip_share</code> = {s['max_flip_share']} "
        "&times; the champion's messages in that intent)). More flips in any critical intent is a "
        "<b>critical intent regression</b>. Flips count whether or not the champion was right: "
        "shadow traffic is mostly unlabelled. Flips into an intent are shown, never offset.</p>"
        + _table(
            ["intent", "champion messages", "flips away", "share", "tolerated", "flips into", ""],
            rows,
        )
    )


def render_shadow_html(report: Mapping[str, Any]) -> str:
    """The page as a string (see :func:`write_shadow_html`)."""
    from mangaassist.serve.shadow_report import format_line

    title = f"Shadow report {report['champion_version']} vs {report['candidate_version']}"
    sections = [
        ("Summary", _summary(report, format_line(report))),
        ("Agreement per intent", _per_intent(report)),
        ("Disagreement matrix", _matrix(report)),
        ("Disagreeing messages", _messages(report)),
        ("Confidence, fallback and latency", _deltas(report)),
        ("Labelled sample", _labelled(report)),
        ("Critical intent regression", _critical(report)),
    ]
    body = "".join(f"<h2>{h}</h2>{content}" for h, content in sections)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>{body}</body></html>\n"
    )


def write_shadow_html(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write the self-contained HTML page of a :func:`shadow_report` atomically; return path."""
    write_text(path, render_shadow_html(report))
    return Path(path)
