"""The report's plots, each returned as a base64 PNG string to embed in HTML.

Figures are built with ``matplotlib.figure.Figure`` (the Agg canvas, no pyplot state), so
plotting works headless and in threads, and nothing leaks between plots.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

DPI = 90


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def confusion_matrix(cm: np.ndarray, labels: Sequence[str], normalised: bool = False) -> str:
    """Heatmap of a (C, C) matrix, rows = truth; cells annotated with counts or shares."""
    cm = np.asarray(cm, dtype=float)
    c = len(labels)
    fig = Figure(figsize=(1.0 + 0.6 * c, 0.8 + 0.55 * c))
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalised else max(cm.max(), 1))
    ax.set_xticks(range(c), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(c), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion (row-normalised)" if normalised else "confusion (counts)")
    if c <= 30:  # beyond that the numbers are unreadable
        top = cm.max() or 1
        for i in range(c):
            for j in range(c):
                if cm[i, j]:
                    text = f"{cm[i, j]:.2f}" if normalised else f"{int(cm[i, j])}"
                    ax.text(
                        j,
                        i,
                        text,
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if cm[i, j] > 0.6 * top else "black",
                    )
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _png(fig)


def reliability(before: dict, after: dict, ece_before: float, ece_after: float) -> str:
    """Reliability diagram: accuracy per confidence bin before and after temperature scaling."""
    fig = Figure(figsize=(9, 4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, rel, name, ece in (
        (axes[0], before, "before", ece_before),
        (axes[1], after, "after", ece_after),
    ):
        edges = np.asarray(rel["edges"])
        width = edges[1] - edges[0]
        has = np.array([n > 0 for n in rel["count"]])
        acc = np.array([a if a is not None else 0.0 for a in rel["accuracy"]])
        conf = np.array([c if c is not None else 0.0 for c in rel["confidence"]])
        ax.bar(
            edges[:-1][has],
            acc[has],
            width=width,
            align="edge",
            edgecolor="k",
            alpha=0.7,
            label="accuracy",
        )
        centres = edges[:-1] + width / 2
        ax.plot(
            centres[has], conf[has], "_", color="tab:red", ms=12, mew=2, label="mean confidence"
        )
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_title(f"{name} temperature scaling (ECE {ece:.3f})")
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left")
    return _png(fig)


def confidence_histograms(conf: np.ndarray, correct: np.ndarray) -> str:
    """Histograms of top-1 confidence for correct and for wrong predictions."""
    return _png(confidence_figure(conf, correct))


def confidence_figure(conf: np.ndarray, correct: np.ndarray) -> Figure:
    """The figure of :func:`confidence_histograms`, log count axis with plain tick labels."""
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    bins = np.linspace(0, 1, 21)
    ax.hist(conf[correct], bins=bins, alpha=0.6, label=f"correct ({int(correct.sum())})")
    ax.hist(
        conf[~correct],
        bins=bins,
        alpha=0.6,
        color="tab:red",
        label=f"wrong ({int((~correct).sum())})",
    )
    ax.set_xlabel("calibrated top-1 confidence")
    ax.set_ylabel("messages")
    ax.set_yscale("log")
    # Matplotlib's log axis labels minor ticks as 6x10^0 when the counts span under a decade:
    # ticks at 1, 2, 5 per decade, printed as the counts they are (1, 2, 5, 10, 20, ...).
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.legend()
    return fig


def risk_coverage(coverage: np.ndarray, risk: np.ndarray, marks: Sequence[tuple] = ()) -> str:
    """Error rate of the answered share vs the share answered (most confident first).

    Args:
        marks: (coverage, risk, label) points to highlight, e.g. the global threshold.
    """
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot(coverage, risk, lw=1.5)
    for cov, r, label in marks:
        ax.plot([cov], [r], "o", label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(0.05, float(np.max(risk)) * 1.1) if len(risk) else 1)
    ax.set_xlabel("coverage (share of messages routed)")
    ax.set_ylabel("risk (error rate when routed)")
    if marks:
        ax.legend()
    return _png(fig)


def latency_histogram(samples_ms: Sequence[float], p95_ms: float, budget_ms: float) -> str:
    """Histogram of batch-1 latency with the P95 and the budget marked."""
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.hist(samples_ms, bins=40)
    ax.axvline(p95_ms, color="tab:orange", label=f"P95 {p95_ms:.1f} ms")
    ax.axvline(budget_ms, color="tab:red", ls="--", label=f"budget {budget_ms:.0f} ms")
    ax.set_xlabel("ms per message (tokenize + forward)")
    ax.set_ylabel("messages")
    ax.legend()
    return _png(fig)
