"""The self-contained HTML report of one evaluation: tables and base64 PNG plots in one file.

The page is rendered from ``report_template.html`` (Jinja2, autoescaped: message texts are
user input). Open it from disk, mail it, attach it to a ticket: it needs nothing else.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape

from mangaassist.atomic import write_text
from mangaassist.evaluation import plots
from mangaassist.evaluation.calibration import at_search_bound
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


def warnings(m: dict) -> list[str]:
    """Banners for the top of the report: figures that are not what they seem.

    A model whose accuracy interval reaches chance (1/C) has learned nothing the test can
    show; a temperature at its search bound means the fit hit the wall, not the NLL minimum.

    Args:
        m: the metrics of an evaluation (:func:`~mangaassist.evaluation.evaluate.evaluate_logits`).
    """
    out = []
    n_classes = len(m["labels"])
    chance = 1.0 / n_classes if n_classes else 0.0
    ci = (m.get("ci") or {}).get("acc") or {}
    lo, hi = ci.get("lo", m["acc"]), ci.get("hi", m["acc"])
    if n_classes > 1 and lo <= chance:
        out.append(
            f"Model at chance: accuracy {_fmt_pct(m['acc'])}% (95% CI {_fmt_pct(lo)}–"
            f"{_fmt_pct(hi)}%) does not exceed chance, {_fmt_pct(chance)}% for {n_classes} "
            "classes. The other figures on this page describe an untrained or broken model."
        )
    c = m["calibration"]
    bounds = tuple(c.get("temperature_bounds") or (0.05, 20.0))  # fit_temperature's default
    if at_search_bound(c["temperature"], bounds):
        out.append(
            f"Temperature at its search bound: T = {c['temperature']:.3g} in "
            f"[{bounds[0]:g}, {bounds[1]:g}]. The fit stopped at the wall, not at the lowest "
            "validation NLL: the model is near chance, or evaluation.temperature_bounds is too "
            "tight. Calibrated confidences and the fallback rates are not to be trusted."
        )
    return out


def fallback_note(m: dict, max_confidence: float) -> str | None:
    """In words, why nothing was routed; None when something was (the rates then say it).

    Args:
        m: the evaluation metrics.
        max_confidence: the highest calibrated top-1 confidence of the set.
    """
    fb = m["fallback"]
    if fb["routed_rate"] > 0:
        return None
    held = fb["held_back_accuracy"]
    tail = (
        "" if held is None else f" Had they been routed, {_fmt_pct(held)}% would have been right."
    )
    if fb["fallback_rate"] >= 1.0:
        return (
            f"Nothing was routed: all {m['n']} messages went to fallback because every calibrated "
            f"confidence is below its intent's threshold (the highest is {max_confidence:.2f}; "
            f"the global threshold is {fb['global_threshold']:.2f})." + tail
        )
    if fb["clarify_rate"] >= 1.0:
        return (
            f"Nothing was routed: all {m['n']} messages went to clarify because their top two "
            f"intents are closer than the ambiguity margin {fb['margin']:.2f}." + tail
        )
    return (
        f"Nothing was routed: {_fmt_pct(fb['fallback_rate'])}% went to fallback (confidence below "
        f"the threshold; the highest is {max_confidence:.2f}) and {_fmt_pct(fb['clarify_rate'])}% "
        f"to clarify (top two closer than the margin {fb['margin']:.2f})." + tail
    )


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
            warnings=warnings(ev.metrics),
            fallback_note=fallback_note(
                ev.metrics, float(ev.probs_after.max()) if ev.probs_after.size else 0.0
            ),
            generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )


def write_report(ev, path: Path, title: str = "Evaluation", context: dict | None = None) -> Path:
    """Render and write the report; returns its path."""
    path = Path(path)
    write_text(path, render_report(ev, title, context))
    return path
