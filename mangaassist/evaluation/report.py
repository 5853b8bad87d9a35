"""The self-contained HTML report of one evaluation: tables and base64 PNG plots in one file.

The page is rendered from ``report_template.html`` (Jinja2, autoescaped: message texts are
user input). Open it from disk, mail it, attach it to a ticket: it needs nothing else.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape

from mangaassist.evaluation import plots
from mangaassist.evaluation.fallback import risk_coverage

TEMPLATE = "report_template.html"


def _fmt_pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _fmt_num(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _fmt_pct
    env.filters["num"] = _fmt_num
    return env


def build_plots(ev) -> dict[str, str]:  # ev: mangaassist.evaluation.evaluate.Evaluation
    """Every plot of the report as base64 PNG, keyed by name."""
    m = ev.metrics
    labels = m["labels"]
    cal = m["calibration"]
    conf = ev.probs_after.max(axis=1)
    correct = ev.y_pred == ev.y_true
    rc = risk_coverage(ev.probs_after, ev.y_true)
    fb = m["fallback"]
    routed_share = fb["routed_rate"]
    marks = []
    if routed_share > 0:
        # Where the fallback policy operates on the curve: its coverage and routed error rate.
        marks.append((routed_share, 1 - (fb["routed_accuracy"] or 0), "fallback policy"))
    out = {
        "confusion_counts": plots.confusion_matrix(np.asarray(m["confusion"]), labels),
        "confusion_norm": plots.confusion_matrix(
            np.asarray(m["confusion_normalised"]), labels, normalised=True
        ),
        "reliability": plots.reliability(
            cal["reliability_before"], cal["reliability_after"], cal["ece_before"], cal["ece_after"]
        ),
        "confidence": plots.confidence_histograms(conf, correct),
        "risk_coverage": plots.risk_coverage(rc["coverage"], rc["risk"], marks),
    }
    if ev.latency_samples_ms and m.get("latency"):
        out["latency"] = plots.latency_histogram(
            ev.latency_samples_ms, m["latency"]["p95_ms"], m["latency"]["budget_ms"]
        )
    return out


def render_report(ev, title: str = "Evaluation", context: dict | None = None) -> str:
    """The report as one HTML string."""
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            title=title,
            m=ev.metrics,
            context=context or {},
            plots=build_plots(ev),
            generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )


def write_report(ev, path: Path, title: str = "Evaluation", context: dict | None = None) -> Path:
    """Render and write the report; returns its path."""
    path = Path(path)
    path.write_text(render_report(ev, title, context), encoding="utf-8")
    return path
