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
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, Path(path))
