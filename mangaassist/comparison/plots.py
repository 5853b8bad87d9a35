"""Comparison plots written as PNG files: validation curves and headline bars.

Figures use ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state), as the report does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

DPI = 100


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def validation_curves(histories: dict[str, object], out_dir: Path) -> list[Path]:
    """One figure per ``val/...`` column of the histories, one line per run.

    Args:
        histories: run label -> ``history.csv`` as a DataFrame (``epoch`` and ``val/...``).
        out_dir: where ``curves_val_<metric>.png`` files go.

    Returns:
        The files written (none when no run has a history).
    """
    metrics: list[str] = []
    for df in histories.values():
        metrics += [c for c in df.columns if c.startswith("val/") and c not in metrics]
    written = []
    for metric in metrics:
        fig = Figure(figsize=(7, 4))
        ax = fig.subplots()
        for label, df in histories.items():
            if metric in df.columns:
                x = df["epoch"] if "epoch" in df.columns else np.arange(1, len(df) + 1)
                ax.plot(x, df[metric], marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        name = "curves_" + metric.replace("/", "_") + ".png"
        written.append(_save(fig, out_dir / name))
    return written


def headline_bars(
    labels: Sequence[str], values: dict[str, Sequence[float | None]], path: Path
) -> Path:
    """Grouped bars: one group per run, one bar per metric (in percent; missing = no bar).

    Args:
        labels: run labels, the x groups.
        values: metric name -> one fraction (or None) per run.
        path: the PNG file.
    """
    n_metrics = max(len(values), 1)
    width = 0.8 / n_metrics
    x = np.arange(len(labels))
    fig = Figure(figsize=(max(6.0, 0.9 * len(labels) * n_metrics * 0.5 + 3), 4.5))
    ax = fig.subplots()
    for i, (metric, vals) in enumerate(values.items()):
        heights = [np.nan if v is None else 100 * v for v in vals]
        ax.bar(x + (i - (n_metrics - 1) / 2) * width, heights, width, label=metric)
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("%")
    # Runs differ by a few points: start the axis 5 below the lowest bar (a multiple of 5).
    shown = [100 * v for vals in values.values() for v in vals if v is not None]
    low = max(0.0, 5 * np.floor((min(shown) - 5) / 5)) if shown else 0.0
    ax.set_ylim(low, 100)
    ax.set_title("headline metrics" + (f" (axis from {low:.0f}%)" if low else ""))
    ax.grid(axis="y", alpha=0.3)
    if values:  # runs without test figures (evaluate=false) leave nothing to label
        ax.legend(fontsize=8, loc="lower right")
    return _save(fig, Path(path))


def frontier(points: Sequence[tuple[str, float, float]], budget_ms: float, path: Path) -> Path:
    """Quality against served P95, one point per (candidate, precision), the Pareto front joined.

    Args:
        points: ``(label, p95_ms, quality_percent)`` per row of the models table.
        budget_ms: the P95 budget, drawn as a vertical line.
        path: the PNG to write.

    Returns:
        ``path``.
    """
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for label, x, y in points:
        ax.scatter([x], [y], s=30, marker="s" if label.endswith("int8") else "o")
        ax.annotate(label, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7)
    # Pareto front: no other point is both faster and better.
    front = sorted(
        (p for p in points if not any(q[1] <= p[1] and q[2] > p[2] for q in points if q != p)),
        key=lambda p: p[1],
    )
    if len(front) > 1:
        ax.plot([p[1] for p in front], [p[2] for p in front], ls="--", lw=1, color="grey")
    ax.axvline(budget_ms, color="red", lw=1, alpha=0.6, label=f"P95 budget {budget_ms:g} ms")
    ax.set_xlabel("served P95 batch-1 latency (ms, ONNX Runtime, 1 thread)")
    ax.set_ylabel("validation macro F1 (%)")
    ax.set_title("Accuracy-latency frontier (o fp32, s int8; dashed: Pareto front)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)
