"""Classification figures from label arrays: accuracy, macro F1, per class, rare recall, per tag.

torchmetrics computes them (tests check it against a numpy reference). Inputs are numpy arrays
of label indices, so evaluation, the gates and the model card all share these functions.
Fractions are in [0, 1]; logs print percentages.

Example:
    >>> import numpy as np
    >>> m = classification_metrics(np.array([0, 1, 2, 2]), np.array([0, 1, 2, 1]), ["a", "b", "c"])
    >>> m["acc"], round(m["macro_f1"], 3), m["per_class"][2]["recall"]
    (0.75, 0.778, 0.5)
    >>> rare_classes({"a": 90, "b": 7, "c": 3}, below=0.05)
    ['c']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from mangaassist.errors import UserError
from mangaassist.model.metrics import rare_class_indices, rare_recall


def rare_classes(class_counts: Mapping[str, int], below: float = 0.05) -> list[str]:
    """Labels whose share of the training split is below ``below`` (the training stage's rule).

    Args:
        class_counts: {label: training examples}, as in a run's ``class_counts.json``.
        below: share of all training examples, e.g. 0.05 for 5%.
    """
    if any(n < 0 for n in class_counts.values()):
        raise UserError(f"class counts must be >= 0, got {dict(class_counts)}")
    labels = list(class_counts)
    return [labels[i] for i in rare_class_indices([int(class_counts[k]) for k in labels], below)]


def _tensors(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-D shapes"
        )
    if y_true.size == 0:
        raise ValueError("no examples to score")
    return torch.as_tensor(y_true, dtype=torch.long), torch.as_tensor(y_pred, dtype=torch.long)


def _f(x: torch.Tensor) -> float:
    # torchmetrics returns float32: 0.801 would print as 0.8009999990463257.
    return round(float(x), 6)


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], rare: Sequence[str] = ()
) -> dict:
    """Accuracy, macro F1, a per-class table, the confusion matrix and rare-class recall.

    Args:
        y_true: (N,) true label indices.
        y_pred: (N,) predicted label indices.
        labels: C names in index order.
        rare: names of the rare classes (see :func:`rare_classes`).

    Returns:
        ``n``, ``acc``, ``macro_f1`` (over classes that occur in truth or predictions, as
        torchmetrics and sklearn do), ``rare_recall`` (None without rare examples),
        ``per_class`` (label, precision, recall, f1, support, rare) and ``confusion``
        (C x C counts, rows = truth, columns = prediction).
    """
    t, p = _tensors(y_true, y_pred)
    c = len(labels)
    kw = {"num_classes": c, "validate_args": True}
    precision = multiclass_precision(p, t, average="none", **kw)
    recall = multiclass_recall(p, t, average="none", **kw)
    f1 = multiclass_f1_score(p, t, average="none", **kw)
    support = np.bincount(np.asarray(y_true), minlength=c)
    per_class = [
        {
            "label": label,
            "precision": _f(precision[i]),
            "recall": _f(recall[i]),
            "f1": _f(f1[i]),
            "support": int(support[i]),
            "rare": label in set(rare),
        }
        for i, label in enumerate(labels)
    ]
    return {
        "n": int(t.numel()),
        "acc": _f(multiclass_accuracy(p, t, average="micro", **kw)),
        "macro_f1": _f(multiclass_f1_score(p, t, average="macro", **kw)),
        "rare_recall": rare_recall(
            [r["recall"] for r in per_class],
            [r["support"] for r in per_class],
            [i for i, r in enumerate(per_class) if r["rare"]],
        ),
        "per_class": per_class,
        "confusion": multiclass_confusion_matrix(p, t, **kw).tolist(),
    }


def per_tag_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    tags: Sequence[Sequence[str]],
    labels: Sequence[str],
    rare: Sequence[str] = (),
) -> list[dict]:
    """Accuracy, macro F1 and rare recall on the examples carrying each tag.

    A tag's slice holds few classes, so its ``macro_f1`` is the mean F1 over the classes
    present in the slice's *truth* only. A class the model wrongly predicts there, with no
    true example in the slice, scores F1 0 and would otherwise pull the average down (a
    ``rare_intent`` slice read 23.7 beside 91.7% accuracy); its mistakes still count in the
    F1 of the true classes they were taken from.

    Args:
        tags: per example, its tags (e.g. ``["multi_intent", "romaji"]``); an example with
            several tags counts in each.

    Returns:
        One row per tag, sorted by tag: ``tag``, ``n``, ``acc``, ``macro_f1``, ``rare_recall``.
    """
    if len(tags) != len(y_true):
        raise ValueError(f"{len(tags)} tag lists for {len(y_true)} examples")
    rows = []
    for tag in sorted({t for ts in tags for t in ts}):
        idx = np.array([i for i, ts in enumerate(tags) if tag in ts])
        m = classification_metrics(np.asarray(y_true)[idx], np.asarray(y_pred)[idx], labels, rare)
        rows.append(
            {
                "tag": tag,
                "n": m["n"],
                "acc": m["acc"],
                "macro_f1": _f(np.mean([r["f1"] for r in m["per_class"] if r["support"]])),
                "rare_recall": m["rare_recall"],
            }
        )
    return rows
