"""Points recovered: the candidate minus the champion on the gate set, with paired intervals.

Accuracy and macro F1 use the paired bootstrap of
:func:`~mangaassist.evaluation.significance.paired_bootstrap` (the gates' own test for macro
F1); rare-class recall (the mean recall of the rare classes present) gets the same paired
resampling here. Each figure is in points (percentage points), candidate minus champion, with
its ``1 - alpha`` percentile interval: what this retrain bought, for the next decision.

Example:
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 1, 2, 2] * 20)
    >>> champ = np.where(y == 2, 0, y)               # never right on class 2 (rare)
    >>> r = points_recovered(y, y, champ, 3, rare=[2], n_boot=200)
    >>> r["acc"]["points"], r["rare_recall"]["points"], r["rare_recall"]["lo"] > 0
    (33.33, 100.0, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mangaassist.evaluation.significance import batched_metric, paired_bootstrap

_CHUNK = 200


def _rare_recall(y: np.ndarray, p: np.ndarray, rare: Sequence[int]) -> np.ndarray:
    """(B, N) truth and predictions -> (B,) mean recall of the rare classes present (NaN: none)."""
    recalls = []
    for r in rare:
        support = (y == r).sum(axis=1)
        hits = ((y == r) & (p == r)).sum(axis=1)
        recalls.append(np.where(support > 0, hits / np.maximum(support, 1), np.nan))
    if not recalls:
        return np.full(y.shape[0], np.nan)
    stacked = np.stack(recalls)  # (R, B)
    present = ~np.isnan(stacked)
    total = np.where(present, stacked, 0).sum(axis=0)
    return np.where(present.any(axis=0), total / np.maximum(present.sum(axis=0), 1), np.nan)


def _rare_diff(
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    rare: Sequence[int],
    n_boot: int,
    seed: int,
    alpha: float,
) -> dict[str, Any] | None:
    full = _rare_recall(np.stack([y, y]), np.stack([a, b]), rare)
    if np.isnan(full).any():
        return None  # no rare-class example in the set
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, n_boot, _CHUNK):
        idx = rng.integers(0, len(y), size=(min(_CHUNK, n_boot - start), len(y)))
        d = _rare_recall(y[idx], a[idx], rare) - _rare_recall(y[idx], b[idx], rare)
        diffs.append(d[~np.isnan(d)])  # a resample without a rare example says nothing
    all_d = np.concatenate(diffs)
    lo, hi = np.quantile(all_d, [alpha / 2, 1 - alpha / 2]) if all_d.size else (np.nan, np.nan)
    cand, champ = float(full[0]), float(full[1])
    diff = cand - champ
    return {"candidate": cand, "champion": champ, "diff": diff, "lo": float(lo), "hi": float(hi)}


def points_recovered(
    y_true: np.ndarray,
    cand_pred: np.ndarray,
    champ_pred: np.ndarray,
    n_classes: int,
    *,
    rare: Sequence[int] = (),
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, dict[str, Any] | None]:
    """Candidate minus champion on the same examples: ``acc``, ``macro_f1``, ``rare_recall``.

    Args:
        y_true, cand_pred, champ_pred: (N,) label indices, one label order for all three.
        rare: indices of the rare classes; rare recall is None without one in ``y_true``.

    Returns:
        Per metric: ``candidate`` and ``champion`` (fractions), ``points`` (the difference in
        percentage points) and ``lo``/``hi`` (its interval, points), rounded to 2 decimals.
    """
    y, a, b = (np.asarray(x, dtype=np.int64) for x in (y_true, cand_pred, champ_pred))
    out: dict[str, dict[str, Any] | None] = {}
    for metric in ("acc", "macro_f1"):
        t = paired_bootstrap(y, a, b, n_classes, metric, n_boot, seed, alpha)
        pair = batched_metric(np.stack([y, y]), np.stack([a, b]), n_classes, metric)
        out[metric] = {"candidate": float(pair[0]), "champion": float(pair[1]), **t}
    out["rare_recall"] = _rare_diff(y, a, b, list(rare), n_boot, seed, alpha)
    for metric, r in out.items():
        if r is not None:
            out[metric] = {
                "candidate": round(r["candidate"], 4),
                "champion": round(r["champion"], 4),
                "points": round(100 * r["diff"], 2),
                "lo": round(100 * r["lo"], 2),
                "hi": round(100 * r["hi"], 2),
            }
    return out


def recovered_line(rec: dict[str, dict[str, Any] | None], n: int, source: str) -> str:
    """``[RETRAIN_RECOVERED] set=registry n=400 acc=+2.50pp acc_ci=[+0.75,+4.25] acc_cand=93.0
    acc_champ=90.5 ...`` (points, the interval, then each model's figure in percent)."""
    parts = [f"[RETRAIN_RECOVERED] set={source} n={n}"]
    for metric in ("acc", "macro_f1", "rare_recall"):
        r = rec.get(metric)
        if r is None:
            parts.append(f"{metric}=n/a")
            continue
        parts.append(
            f"{metric}={r['points']:+.2f}pp {metric}_ci=[{r['lo']:+.2f},{r['hi']:+.2f}] "
            f"{metric}_cand={100 * r['candidate']:.1f} {metric}_champ={100 * r['champion']:.1f}"
        )
    return " ".join(parts)
