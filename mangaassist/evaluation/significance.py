"""Is a difference between two models on the same examples real, or noise?

Two paired tests, both on per-example outcomes of the same evaluation set:

- McNemar's test on accuracy: only the discordant examples count (b = A right and B wrong,
  c = A wrong and B right). Exact binomial when b + c < 25, else chi-square with continuity
  correction.
- A paired bootstrap on any metric: resample example indices with replacement, score both
  models on the same resample, and take the percentile interval of the difference.

Plus a plain bootstrap interval for one model's metric (for the model card). The numpy
metric code is vectorised over resamples: (B, N) index arrays, chunked to bound memory.

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


def _resampled(n: int, n_boot: int, seed: int):
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, _CHUNK):
        yield rng.integers(0, n, size=(min(_CHUNK, n_boot - start), n))


def bootstrap_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int,
    metric: str = "acc",
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """Point value and percentile bootstrap interval ``[lo, hi]`` (1 - alpha) of one metric."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    point = float(batched_metric(y_true[None], y_pred[None], n_classes, metric)[0])
    values = np.concatenate(
        [
            batched_metric(y_true[i], y_pred[i], n_classes, metric)
            for i in _resampled(len(y_true), n_boot, seed)
        ]
    )
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return {"value": point, "lo": float(lo), "hi": float(hi), "n_boot": n_boot}


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

    Returns:
        ``diff`` (on the full set), ``lo``/``hi`` (percentile interval, 1 - alpha),
        ``p_value`` (two-sided: twice the share of resampled differences on the far side of 0,
        capped at 1) and ``verdict``: ``better`` (lo > 0), ``worse`` (hi < 0) or ``tie``.
    """
    y_true, pred_a, pred_b = map(np.asarray, (y_true, pred_a, pred_b))
    full = batched_metric(np.stack([y_true, y_true]), np.stack([pred_a, pred_b]), n_classes, metric)
    diffs = np.concatenate(
        [
            batched_metric(y_true[i], pred_a[i], n_classes, metric)
            - batched_metric(y_true[i], pred_b[i], n_classes, metric)
            for i in _resampled(len(y_true), n_boot, seed)
        ]
    )
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean()))
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "tie"
    return {
        "diff": float(full[0] - full[1]),
        "lo": float(lo),
        "hi": float(hi),
        "p_value": float(p),
        "verdict": verdict,
        "n_boot": n_boot,
    }
