"""Formatting shared by the tables: percentages, mean ± std, Markdown, console and CSV.

Example:
    >>> s = mean_std([0.92, 0.925, 0.918])
    >>> s.n, fmt_stat(s)
    (3, '92.1±0.4')
    >>> print(markdown(["a", "b"], [["1", "x|y"]]))
    | a | b |
    |---|---|
    | 1 | x\\|y |
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mangaassist.atomic import replacing

DASH = "–"


def pct(v: float | None, digits: int = 1) -> str:
    """A fraction as a percentage without the sign; a dash for None."""
    return DASH if v is None else f"{100 * v:.{digits}f}"


def num(v: float | None, digits: int = 3) -> str:
    """A number with ``digits`` decimals; a dash for None."""
    return DASH if v is None else f"{v:.{digits}f}"


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (0 for a single value) of ``n`` values."""

    mean: float
    std: float
    n: int


def mean_std(values: Iterable[float | None]) -> Stat | None:
    """Mean ± sample std of the finite values (None when there are none)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return None
    return Stat(statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0, len(xs))


def fmt_stat(s: Stat | None, scale: float = 100.0, digits: int = 1) -> str:
    """``92.1±0.3`` (values times ``scale``); a single value has no ± part."""
    if s is None:
        return DASH
    if s.n == 1:
        return f"{s.mean * scale:.{digits}f}"
    return f"{s.mean * scale:.{digits}f}±{s.std * scale:.{digits}f}"


def markdown(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub Markdown table (``|`` in cells escaped)."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), "|" + "---|" * len(headers), *map(line, rows)])


def console(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A fixed-width table for the terminal: first column left-aligned, others right."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def write_csv(path: Path, rows: Sequence[dict]) -> Path:
    """Write dict rows (raw values; the union of keys, in first-seen order) as CSV."""
    path = Path(path)
    fields: dict[str, None] = {}
    for r in rows:
        fields.update(dict.fromkeys(r))
    with replacing(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)
    return path
