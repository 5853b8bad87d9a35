"""Fallback routing offline: choosing the thresholds on validation, and what they cost.

The rule itself (:class:`~mangaassist.inference.policy.FallbackPolicy`: route, fall back
on low confidence, or clarify when the top two are close) lives in the torch-free runtime,
:mod:`mangaassist.inference.policy`, because the server applies it too. This module fits
its per-intent thresholds (:func:`choose_thresholds`) and scores it on labelled data.

Example:
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.45, 0.55], [0.25, 0.75]])
    >>> policy = FallbackPolicy(0.6, 0.1, {"b": 0.8})
    >>> s = fallback_summary(policy, probs, np.array([0, 0, 1, 1]), "ab")
    >>> s["routed_rate"], s["routed_accuracy"]
    (0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mangaassist.inference.policy import CLARIFY, FALLBACK, ROUTE, FallbackPolicy

__all__ = [
    "CLARIFY",
    "FALLBACK",
    "ROUTE",
    "FallbackPolicy",
    "accuracy_above",
    "choose_thresholds",
    "fallback_summary",
    "risk_coverage",
]

ACCURACY_THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def choose_thresholds(
    probs: np.ndarray,
    y_true: np.ndarray,
    labels: Sequence[str],
    target_precision: float | Mapping[str, float] = 0.9,
    min_support: int = 20,
    max_threshold: float = 0.95,
) -> tuple[dict[str, float], list[str]]:
    """Per intent, the lowest confidence threshold whose precision on validation meets the target.

    Only messages predicted as intent c count for c. Precision among those with confidence
    >= t is not monotone in t, so every distinct confidence is tried and the lowest that meets
    the target wins (it keeps the most traffic).

    Args:
        probs: (N, C) calibrated validation probabilities.
        y_true: (N,) true indices.
        target_precision: one target, or {label: target} (labels missing use 0.9).
        min_support: intents predicted fewer times get no threshold of their own.
        max_threshold: used for an intent that never reaches its target.

    Returns:
        ({label: chosen threshold} for intents with enough support, [labels that never
        reached their target and were capped at ``max_threshold``]).
    """
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    chosen: dict[str, float] = {}
    unreached: list[str] = []
    for c, label in enumerate(labels):
        if isinstance(target_precision, Mapping):
            target = float(target_precision.get(label, 0.9))
        else:
            target = float(target_precision)
        mine = pred == c
        if mine.sum() < min_support:
            continue
        order = np.argsort(-conf[mine], kind="stable")
        c_sorted = conf[mine][order]  # descending confidence
        hits = np.cumsum(y_true[mine][order] == c)
        precision = hits / np.arange(1, len(order) + 1)
        # Keep the last position of each run of equal confidences: a threshold takes all ties.
        last_of_tie = np.r_[c_sorted[1:] != c_sorted[:-1], True]
        ok = np.flatnonzero((precision >= target) & last_of_tie)
        if ok.size:
            chosen[label] = float(min(c_sorted[ok[-1]], max_threshold))
        else:
            chosen[label] = float(max_threshold)
            unreached.append(label)
    return chosen, unreached


def risk_coverage(probs: np.ndarray, y_true: np.ndarray) -> dict:
    """Selective risk when only the most confident messages are answered.

    Returns:
        ``coverage`` and ``risk`` (error rate of the answered share), both (N,) for answering
        the top 1..N messages by confidence, and ``aurc`` (area under the curve; lower is better).
    """
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    order = np.argsort(-conf, kind="stable")
    errors = np.cumsum(pred[order] != y_true[order])
    k = np.arange(1, len(order) + 1)
    risk = errors / k
    return {"coverage": k / len(order), "risk": risk, "aurc": float(risk.mean())}


def accuracy_above(
    probs: np.ndarray, y_true: np.ndarray, thresholds: Sequence[float] = ACCURACY_THRESHOLDS
) -> list[dict]:
    """Accuracy and coverage of the messages whose confidence is at least each threshold."""
    conf, correct = probs.max(axis=1), probs.argmax(axis=1) == y_true
    rows = []
    for t in thresholds:
        keep = conf >= t
        rows.append(
            {
                "threshold": float(t),
                "coverage": float(keep.mean()),
                "accuracy": float(correct[keep].mean()) if keep.any() else None,
            }
        )
    return rows


def fallback_summary(
    policy: FallbackPolicy, probs: np.ndarray, y_true: np.ndarray, labels: Sequence[str]
) -> dict:
    """Shares of routed / fallback / clarify messages and the accuracy of what is routed."""
    actions = policy.route(probs, labels)
    correct = probs.argmax(axis=1) == y_true
    routed = actions == ROUTE
    return {
        "routed_rate": float(routed.mean()),
        "fallback_rate": float((actions == FALLBACK).mean()),
        "clarify_rate": float((actions == CLARIFY).mean()),
        "low_confidence_rate": float((~routed).mean()),
        "routed_accuracy": float(correct[routed].mean()) if routed.any() else None,
        "held_back_accuracy": float(correct[~routed].mean()) if (~routed).any() else None,
    }
