"""Where the errors go: most-confused pairs, their routing cost, and the worst examples.

A confusion between two intents whose services overlap (discovery vs recommendation: both
answer with a list of titles) is cheap; one that sends a user asking for their parcel to the
catalog search is not. The routing-cost table in ``conf/evaluation`` says which is which.

Example:
    >>> import numpy as np
    >>> from mangaassist.evaluation.settings import RoutingCost
    >>> cm = np.array([[8, 2, 0], [1, 9, 0], [0, 3, 7]])
    >>> rc = RoutingCost(pairs=(("a", "b", 0.2),))
    >>> [(p["true"], p["pred"], p["count"], p["severity"]) for p in confused_pairs(cm, "abc", rc)]
    [('c', 'b', 3, 'severe'), ('a', 'b', 2, 'acceptable'), ('b', 'a', 1, 'acceptable')]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mangaassist.evaluation.settings import RoutingCost


def row_normalise(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its total (rows = truth): cell (i, j) = P(pred j | true i)."""
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def confused_pairs(
    cm: np.ndarray, labels: Sequence[str], routing: RoutingCost, top_k: int = 10
) -> list[dict]:
    """The ``top_k`` largest off-diagonal cells, most frequent first.

    Returns:
        Rows of ``true``, ``pred``, ``count``, ``rate`` (share of the true class),
        ``share_of_errors``, ``cost`` and ``severity`` (acceptable | severe).
    """
    cm = np.asarray(cm)
    errors = cm.sum() - np.trace(cm)
    norm = row_normalise(cm)
    cells = [(int(cm[i, j]), i, j) for i in range(len(cm)) for j in range(len(cm)) if i != j]
    cells = sorted((c for c in cells if c[0] > 0), key=lambda c: (-c[0], c[1], c[2]))[:top_k]
    return [
        {
            "true": labels[i],
            "pred": labels[j],
            "count": n,
            "rate": float(norm[i, j]),
            "share_of_errors": float(n / errors) if errors else 0.0,
            "cost": routing.cost(labels[i], labels[j]),
            "severity": routing.severity(labels[i], labels[j]),
        }
        for n, i, j in cells
    ]


def concentration(cm: np.ndarray, top_k: int = 3) -> float:
    """Share of all errors that fall in the ``top_k`` most frequent confused pairs."""
    cm = np.asarray(cm)
    off = cm[~np.eye(len(cm), dtype=bool)]
    errors = off.sum()
    return float(np.sort(off)[::-1][:top_k].sum() / errors) if errors else 0.0


def routing_cost(cm: np.ndarray, labels: Sequence[str], routing: RoutingCost) -> dict:
    """Mean routing cost per message and the error counts split by severity."""
    cm = np.asarray(cm)
    total, cost, severe, acceptable = cm.sum(), 0.0, 0, 0
    for i, t in enumerate(labels):
        for j, p in enumerate(labels):
            if i == j or cm[i, j] == 0:
                continue
            cost += cm[i, j] * routing.cost(t, p)
            if routing.severity(t, p) == "severe":
                severe += int(cm[i, j])
            else:
                acceptable += int(cm[i, j])
    return {
        "cost_per_message": float(cost / total) if total else 0.0,
        "severe_errors": severe,
        "acceptable_errors": acceptable,
        "severe_error_rate": float(severe / total) if total else 0.0,
    }


def top_errors(
    probs: np.ndarray,
    y_true: np.ndarray,
    texts: Sequence[str],
    labels: Sequence[str],
    k: int = 5,
) -> dict[str, dict[str, list[dict]]]:
    """Per intent, the most confident false positives and false negatives.

    A false positive of c is a message predicted c that is not c; a false negative is a
    message of c predicted as something else. Both are ranked by the confidence of the wrong
    prediction: confident mistakes are the ones a threshold does not catch.

    Args:
        probs: (N, C) calibrated probabilities.
        y_true: (N,) true indices.
        texts: N messages.

    Returns:
        {label: {"false_positives": [...], "false_negatives": [...]}}, each item with
        ``text``, ``true``, ``pred`` and ``confidence``.
    """
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    order = np.argsort(-conf, kind="stable")  # most confident first

    def item(i: int) -> dict:
        return {
            "text": texts[i],
            "true": labels[y_true[i]],
            "pred": labels[pred[i]],
            "confidence": float(conf[i]),
        }

    out = {}
    for c, label in enumerate(labels):
        wrong = pred[order] != y_true[order]
        fp = order[wrong & (pred[order] == c)][:k]
        fn = order[wrong & (y_true[order] == c)][:k]
        out[label] = {
            "false_positives": [item(i) for i in fp],
            "false_negatives": [item(i) for i in fn],
        }
    return out
