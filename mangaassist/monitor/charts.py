"""The dashboard's charts: matplotlib (Agg) figures as base64 PNG, so the page has no assets.

Each chart is a function of the report: it picks its windows (the smallest width for traffic,
the next one for sampled accuracy, whose labels are sparser), draws the runbook threshold as a
dashed line, and marks every registry switch (promotion, rollback) as a vertical line.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display, no GUI toolkit
import matplotlib.dates as mdates
import matplotlib.pyplot as plt

Report = Mapping[str, Any]
_SWITCH_COLOUR = {"promote": "tab:green", "rollback": "tab:red"}


def kinds(report: Report) -> tuple[str, str]:
    """(fine, coarse) window names: the smallest width and the next one (or the same)."""
    names = list(report["windows_seconds"])
    return names[0], names[1] if len(names) > 1 else names[0]


def _series(report: Report, kind: str, *keys: str):
    """(window midpoints, the windows, one list of values per key): a value is drawn at the
    middle of the window it describes, so hourly and daily points line up in time."""
    rows = [w for w in report["windows"] if w["kind"] == kind]
    half = dt.timedelta(seconds=report["windows_seconds"][kind] / 2)
    t = [dt.datetime.fromisoformat(w["start"]) + half for w in rows]
    return t, rows, [[w.get(k) for w in rows] for k in keys]


def _span(report: Report) -> tuple[dt.datetime, dt.datetime] | None:
    """The time axis every chart shares: the smallest windows (the data), and the switches."""
    fine = kinds(report)[0]
    rows = [w for w in report["windows"] if w["kind"] == fine]
    times = [dt.datetime.fromisoformat(w[k]) for w in rows for k in ("start", "end")]
    times += [dt.datetime.fromisoformat(s["time"]) for s in report["switches"]]
    return (min(times), max(times)) if times else None


def _nan(xs: list) -> list[float]:
    return [float("nan") if x is None else float(x) for x in xs]


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _axes(title: str, ylabel: str):
    fig, ax = plt.subplots(figsize=(10, 2.8))
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def _finish(ax, report: Report, threshold: float | None = None, label: str = "") -> None:
    if threshold is not None:
        ax.axhline(threshold, ls="--", c="grey", lw=1, label=label or f"threshold {threshold:g}")
    for sw in report["switches"]:
        when = dt.datetime.fromisoformat(sw["time"])
        colour = _SWITCH_COLOUR.get(sw["event"], "k")
        ax.axvline(when, c=colour, lw=1.2, alpha=0.8)
        ax.annotate(
            f"{sw['event']} {sw['version']}",
            (mdates.date2num(when), 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            color=colour,
            rotation=90,
            va="top",
            ha="right",
        )
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if (span := _span(report)) is not None:
        ax.set_xlim(*span)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def latency(report: Report) -> str:
    fine, _ = kinds(report)
    t, _, (p50, p95, p99) = _series(report, fine, "p50_ms", "p95_ms", "p99_ms")
    fig, ax = _axes(f"Latency per {fine} window (ms)", "ms")
    for ys, name in ((p50, "P50"), (p95, "P95"), (p99, "P99")):
        ax.plot(t, _nan(ys), lw=1.2, label=name, drawstyle="steps-mid", marker=".", ms=3)
    _finish(ax, report, report["thresholds"].get("p95_ms"), "P95 SLO")
    return _png(fig)


def volume(report: Report) -> str:
    fine, _ = kinds(report)
    t, _, (n,) = _series(report, fine, "n")
    fig, ax = _axes(f"Volume: champion messages per {fine} window", "messages")
    ax.plot(t, _nan(n), drawstyle="steps-mid", lw=1.2, marker=".", ms=3)
    _finish(ax, report)
    return _png(fig)


def rates(report: Report, keys: tuple[str, ...], title: str, threshold: str | None) -> str:
    fine, _ = kinds(report)
    t, _, ys = _series(report, fine, *keys)
    fig, ax = _axes(f"{title} per {fine} window (%)", "%")
    for k, y in zip(keys, ys, strict=True):
        ax.plot(
            t, [100 * v for v in _nan(y)], lw=1.2, label=k, drawstyle="steps-mid", marker=".", ms=3
        )
    limit = report["thresholds"].get(threshold) if threshold else None
    _finish(ax, report, None if limit is None else 100 * limit, f"{threshold} limit")
    if all(v is None for y in ys for v in y):
        why = report["unavailable"].get(keys[0], "no data")
        ax.text(
            0.5,
            0.5,
            textwrap.fill(why if why.startswith("unavailable") else f"unavailable: {why}", 100),
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=9,
        )
    return _png(fig)


def intents(report: Report) -> str:
    fine, _ = kinds(report)
    t, rows, _ = _series(report, fine)
    names = list(report["reference"]["labels"])
    names += sorted({k for w in rows for k in w["intent_counts"]} - set(names))
    shares = []
    for k in names:
        shares.append(
            [
                100 * w["intent_counts"].get(k, 0) / max(1, sum(w["intent_counts"].values()))
                for w in rows
            ]
        )
    fig, ax = _axes(f"Intent distribution per {fine} window (% of answered)", "%")
    width = report["windows_seconds"][fine] / 86_400  # matplotlib dates are in days
    bottom = [0.0] * len(rows)
    for name, share in zip(names, shares, strict=True):  # one stacked bar per window
        ax.bar(t, share, width=width * 0.95, bottom=bottom, label=name, alpha=0.85)
        bottom = [b + x for b, x in zip(bottom, share, strict=True)]
    ax.set_ylim(0, 100)
    _finish(ax, report)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def kl(report: Report) -> str:
    fine, coarse = kinds(report)
    fig, ax = _axes("Intent-mix drift: KL(P_live || Q_ref), nats", "nats")
    t, _, (k,) = _series(report, fine, "kl_div")
    ax.plot(t, _nan(k), lw=0.8, alpha=0.6, label=fine, drawstyle="steps-mid", marker=".", ms=3)
    if coarse != fine:
        t2, _, (k2,) = _series(report, coarse, "kl_div")
        ax.plot(t2, _nan(k2), marker="o", lw=1.6, label=coarse)
    th = report["thresholds"]
    for key, colour in (("kl_watch", "gold"), ("kl_alert", "orange"), ("kl_retrain", "red")):
        if key in th:
            ax.axhline(th[key], ls="--", c=colour, lw=1, label=f"{key} {th[key]:g}")
    _finish(ax, report)
    return _png(fig)


def sampled(report: Report, key: str, title: str, threshold: str) -> str:
    _, coarse = kinds(report)
    t, _, (y, lo, hi, est) = _series(report, coarse, key, f"{key}_lo", f"{key}_hi", "est_acc")
    fig, ax = _axes(f"{title} per {coarse} window, 95% Wilson interval (%)", "%")
    ys, los, his = (_nan(v) for v in (y, lo, hi))
    err = [
        [100 * (a - b) for a, b in zip(ys, los, strict=True)],
        [100 * (b - a) for a, b in zip(ys, his, strict=True)],
    ]
    ax.errorbar(t, [100 * v for v in ys], yerr=err, marker="o", capsize=3, label=key)
    if key == "sampled_acc":
        ax.plot(t, [100 * v for v in _nan(est)], ls=":", marker="x", label="est_acc (label-free)")
    limit = report["thresholds"].get(threshold)
    _finish(ax, report, None if limit is None else 100 * limit, f"{threshold} floor")
    if all(v is None for v in y):
        why = report["unavailable"].get(key) or f"fewer than min_labels labels per {coarse}"
        ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", fontsize=9)
    return _png(fig)


def text_drift(report: Report) -> str:
    _, coarse = kinds(report)
    t, _, (nv, jp) = _series(report, coarse, "new_vocab_share", "jp_share")
    fig, ax = _axes(f"Messages: new-vocabulary and Japanese-script share per {coarse} (%)", "%")
    ref = report["reference"]
    for ys, key in ((nv, "new_vocab_share"), (jp, "jp_share")):
        (line,) = ax.plot(t, [100 * v for v in _nan(ys)], marker="o", label=key)
        if ref.get(key) is not None:
            ax.axhline(100 * ref[key], ls=":", c=line.get_color(), label=f"reference {key}")
    _finish(ax, report)
    if all(v is None for v in nv + jp):
        why = report["unavailable"].get("new_vocab_share", "no text")
        ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", fontsize=9)
    return _png(fig)


def lengths(report: Report) -> str:
    fine, _ = kinds(report)
    t, _, (mean, p95) = _series(report, fine, "len_mean", "len_p95")
    fig, ax = _axes(f"Message length: tokens per message, {fine} windows", "tokens")
    ref = report["reference"]
    for ys, key in ((mean, "len_mean"), (p95, "len_p95")):
        (line,) = ax.plot(t, _nan(ys), lw=1.2, label=key, drawstyle="steps-mid", marker=".", ms=3)
        if ref.get(key) is not None:
            ax.axhline(ref[key], ls=":", c=line.get_color(), label=f"reference {key}")
    _finish(ax, report)
    return _png(fig)


CHARTS: list[tuple[str, Callable[[Report], str]]] = [
    ("Latency P50 / P95 / P99", latency),
    ("Volume", volume),
    ("Error rate", lambda r: rates(r, ("err_rate",), "Error rate", "err_rate")),
    (
        "Low-confidence and fallback rate",
        lambda r: rates(
            r, ("low_conf_rate", "fallback_rate"), "Low-confidence / fallback rate", "low_conf_rate"
        ),
    ),
    ("Intent distribution over time", intents),
    ("KL divergence", kl),
    ("Sampled accuracy", lambda r: sampled(r, "sampled_acc", "Sampled accuracy", "sampled_acc")),
    ("Rare-class recall", lambda r: sampled(r, "rare_recall", "Rare-class recall", "rare_recall")),
    ("Message drift", text_drift),
    ("Message length", lengths),
]
