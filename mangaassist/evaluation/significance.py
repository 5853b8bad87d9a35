"""Is a difference between two models on the same examples real, or noise?

Two paired tests, both on per-example outcomes of the same evaluation set:

- McNemar's test on accuracy: only the discordant examples count (b = A right and B wrong,
  c = A wrong and B right). Exact binomial when b + c < 25, else chi-square with continuity
  correction.
- A paired bootstrap on any metric: ``scipy.stats.bootstrap(paired=True)`` resamples example
  indices with replacement, both models are scored on the same resample, and the interval is
  the percentile interval of the difference; the p-value is read off the resampled
  differences (see :func:`paired_bootstrap`).

Plus a plain bootstrap interval for one model's metric (for the model card), also scipy's.
The numpy metric code is vectorised over resamples: scipy hands it (B, N) arrays, ``_CHUNK``
resamples at a time to bound memory.

Example:
    >>> import numpy as np
    >>> a = np.array([1] * 30 + [0] * 5, dtype=bool); b = np.array([0] * 30 + [1] * 5, dtype=bool)
    >>> r = mcnemar(a, b)
    >>> r["b"], r["c"], r["p_value"] < 0.001
    (30, 5, True)
"""

from __future__ import annotations

import numpy as np
from scipy import stats

METRICS = ("acc", "macro_f1")
_CHUNK = 200  # resamples per chunk: 200 x N int64 indices, 16 MB at N = 10,000


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """McNemar's test that models A and B have the same accuracy on paired examples.

    Args:
        correct_a: (N,) bool, A's prediction was right.
        correct_b: (N,) bool, B's prediction was right, on the same examples.

    Returns:
        ``b`` (A right, B wrong), ``c`` (A wrong, B right), ``statistic``, ``p_value``
        (two-sided) and ``method`` (``exact`` or ``chi2``).
    """
    a, bb = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != bb.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {bb.shape}")
    b, c = int((a & ~bb).sum()), int((~a & bb).sum())
    if b + c == 0:
        return {"b": 0, "c": 0, "statistic": 0.0, "p_value": 1.0, "method": "exact"}
    if b + c < 25:
        p = stats.binomtest(b, b + c, 0.5).pvalue
        return {
            "b": b,
            "c": c,
            "statistic": float(min(b, c)),
            "p_value": float(p),
            "method": "exact",
        }
    chi2 = (abs(b - c) - 1) ** 2 / (b + c)
    return {
        "b": b,
        "c": c,
        "statistic": float(chi2),
        "p_value": float(stats.chi2.sf(chi2, 1)),
        "method": "chi2",
    }


def batched_metric(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, metric: str
) -> np.ndarray:
    """A metric for each row of (B, N) label arrays -> (B,).

    ``macro_f1`` averages per-class F1 = 2TP / (2TP + FP + FN) over classes that occur in the
    row's truth or predictions, as torchmetrics does.
    """
    if metric == "acc":
        return (y_true == y_pred).mean(axis=1)
    if metric != "macro_f1":
        raise ValueError(f"unknown metric '{metric}'; use one of {METRICS}")
    b, c = y_true.shape[0], n_classes
    # One bincount for all rows: cell (row, true, pred) -> row * C*C + true * C + pred.
    keys = (np.arange(b)[:, None] * c * c + y_true * c + y_pred).ravel()
    cm = np.bincount(keys, minlength=b * c * c).reshape(b, c, c)  # (B, C, C), rows = truth
    tp = np.diagonal(cm, axis1=1, axis2=2)
    fp, fn = cm.sum(axis=1) - tp, cm.sum(axis=2) - tp
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)
    present = denom > 0
    return (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def _bootstrap(data: tuple[np.ndarray, ...], statistic, n_boot: int, seed: int, alpha: float):
    """``scipy.stats.bootstrap`` over paired examples: percentile interval, seeded.

    ``paired=True`` resamples example indices, so every array in ``data`` is indexed by the
    same resample; ``statistic`` gets (B, N) arrays, ``batch`` bounds memory.
    """
    return stats.bootstrap(
        data,
        lambda *arrays, axis=-1: statistic(*arrays),
        n_resamples=n_boot,
        batch=_CHUNK,
        vectorized=True,
        paired=True,
        confidence_level=1 - alpha,
        method="percentile",
        rng=np.random.default_rng(seed),
    )


def bootstrap_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int,
    metric: str = "acc",
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """Point value and percentile bootstrap interval ``[lo, hi]`` (1 - alpha) of one metric.

    The resampling is ``scipy.stats.bootstrap(paired=True, method="percentile")``; with
    fewer than two examples there is nothing to resample and ``lo == hi == value``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    point = float(batched_metric(y_true[None], y_pred[None], n_classes, metric)[0])
    lo, hi = bootstrap_interval(
        (y_true, y_pred),
        lambda t, p: batched_metric(t, p, n_classes, metric),
        n_boot,
        seed,
        alpha,
    )
    return {"value": point, "lo": lo, "hi": hi, "n_boot": n_boot}


def paired_bootstrap(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    n_classes: int,
    metric: str = "macro_f1",
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """Interval of metric(A) - metric(B) over paired resamples of the same examples.

    The resamples are ``scipy.stats.bootstrap(paired=True, method="percentile")``: one
    index resample scores both models, so the interval is of the paired difference.

    Returns:
        ``diff`` (on the full set), ``lo``/``hi`` (percentile interval, 1 - alpha),
        ``p_value`` and ``verdict``: ``better`` (lo > 0), ``worse`` (hi < 0) or ``tie``.
        ``p_value`` is read off scipy's ``bootstrap_distribution`` (the ``n_boot`` resampled
        differences): two-sided, twice the smaller of the shares at or below 0 and at or
        above 0, capped at 1 -- the smallest alpha at which the percentile interval would
        exclude 0. Identical predictions give 1.0.
    """
    y_true, pred_a, pred_b = map(np.asarray, (y_true, pred_a, pred_b))
    full = batched_metric(np.stack([y_true, y_true]), np.stack([pred_a, pred_b]), n_classes, metric)
    if len(y_true) < 2:
        diffs = np.full(n_boot, full[0] - full[1])
        lo = hi = float(diffs[0])
    else:

        def diff(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
            t, a, b = map(np.atleast_2d, (t, a, b))
            return batched_metric(t, a, n_classes, metric) - batched_metric(t, b, n_classes, metric)

        res = _bootstrap((y_true, pred_a, pred_b), diff, n_boot, seed, alpha)
        diffs = res.bootstrap_distribution
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    p = min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean()))
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "tie"
    return {
        "diff": float(full[0] - full[1]),
        "lo": lo,
        "hi": hi,
        "p_value": float(p),
        "verdict": verdict,
        "n_boot": n_boot,
    }


def bootstrap_interval(
    data: tuple[np.ndarray, ...],
    statistic,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile interval ``(lo, hi)`` of any statistic of paired per-example arrays.

    ``statistic(*rows)`` gets (B, N) arrays (one row per resample) and returns (B,) values;
    with fewer than two examples the interval is the full-set value.
    """
    if len(data[0]) < 2:
        v = float(statistic(*(np.atleast_2d(a) for a in data))[0])
        return v, v
    ci = _bootstrap(
        data, lambda *rows: statistic(*map(np.atleast_2d, rows)), n_boot, seed, alpha
    ).confidence_interval
    return float(ci.low), float(ci.high)


def target_verdict(value: float, lo: float, target: float) -> str:
    """How a figure stands against a target, given its interval's lower end.

    ``met`` when the whole interval clears the target; ``within noise`` when the point
    estimate does but the interval reaches below it (the data cannot tell it from the
    target); ``not met`` when the point estimate is below.

    Example:
        >>> target_verdict(0.935, 0.913, 0.921), target_verdict(0.935, 0.93, 0.921)
        ('within noise', 'met')
    """
    if value < target:
        return "not met"
    return "met" if lo >= target else "within noise"
