"""Classification metrics logged while training, built on torchmetrics.

torchmetrics keeps running state per process and synchronises it across DDP ranks in
``compute()``, so the figures are over the whole validation set however many GPUs ran.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

ECE_BINS = 15


def rare_class_indices(class_counts: list[int], below: float) -> list[int]:
    """Indices of the classes whose share of the training split is below ``below`` (e.g. 0.05)."""
    total = sum(class_counts)
    return [i for i, n in enumerate(class_counts) if total and n / total < below]


def rare_present(support: Sequence[int], rare: Sequence[int]) -> list[int]:
    """The rare classes that have examples in the set: the ones rare-class recall averages.

    The one rule for every stage (training logs, evaluation, the promotion gate): a rare
    class with no example in the set has an undefined recall, so it is left out, not 0.

    Args:
        support: (C,) true examples per class.
        rare: indices of the rare classes.
    """
    return [int(i) for i in rare if int(support[i]) > 0]


def rare_recall(
    recall: Sequence[float], support: Sequence[int], rare: Sequence[int]
) -> float | None:
    """Mean recall over :func:`rare_present` classes; None when no rare class has an example.

    Args:
        recall: (C,) per-class recall.
        support: (C,) true examples per class.
        rare: indices of the rare classes.

    Example:
        >>> rare_recall([0.5, 1.0, 0.0], [4, 2, 0], rare=[1, 2])
        1.0
        >>> rare_recall([0.5, 1.0, 0.0], [4, 2, 0], rare=[2]) is None
        True
    """
    present = rare_present(support, rare)
    return float(np.mean([recall[i] for i in present])) if present else None


def rare_recall_of(
    y_true: Sequence[int], y_pred: Sequence[int], rare: Sequence[int]
) -> float | None:
    """:func:`rare_recall` from label indices (truth and prediction, equal length)."""
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    n = max([int(t.max()) + 1 if t.size else 0, *(int(i) + 1 for i in rare)])
    support = np.bincount(t, minlength=n)
    hits = np.bincount(t[t == p], minlength=n)
    return rare_recall(hits / np.maximum(support, 1), support, rare)


class ClassificationMetrics(nn.Module):
    """Accuracy, macro F1, per-class P/R/F1, rare-class recall, confusion, ECE and confidences.

    Args:
        num_classes: C.
        rare: indices of the rare classes (``rare_recall``: see :func:`rare_recall`; NaN when
            no rare class has an example).

    Example:
        >>> m = ClassificationMetrics(3, rare=[2])
        >>> m.update(torch.tensor([[4.0, 0, 0], [0, 4.0, 0], [0, 4.0, 0]]), torch.tensor([0, 1, 2]))
        >>> out = m.compute()
        >>> round(float(out["acc"]), 3), float(out["rare_recall"])
        (0.667, 0.0)
    """

    def __init__(self, num_classes: int, rare: list[int] | None = None) -> None:
        super().__init__()
        c = num_classes
        self.rare = list(rare or [])
        self.collection = MetricCollection(
            {
                "acc": MulticlassAccuracy(c, average="micro"),
                "macro_f1": MulticlassF1Score(c, average="macro"),
                "precision": MulticlassPrecision(c, average="none"),
                "recall": MulticlassRecall(c, average="none"),
                "f1": MulticlassF1Score(c, average="none"),
                "confusion": MulticlassConfusionMatrix(c),
                "ece": MulticlassCalibrationError(c, n_bins=ECE_BINS, norm="l1"),
            }
        )
        self.conf_correct = MeanMetric()
        self.conf_wrong = MeanMetric()

    def update(self, logits: Tensor, target: Tensor) -> None:
        """Add a batch: ``logits`` (B, C) already divided by any temperature, ``target`` (B,)."""
        probs = logits.float().softmax(-1)
        self.collection.update(probs, target)
        conf, pred = probs.max(-1)
        hit = pred == target
        # MeanMetric needs at least one value; weight 0 keeps the mean of an empty side unchanged.
        self.conf_correct.update(conf, weight=hit.float())
        self.conf_wrong.update(conf, weight=(~hit).float())

    def compute(self) -> dict[str, Tensor]:
        """All figures; per-class ones are (C,) tensors, confusion is (C, C) with rows = truth."""
        out = dict(self.collection.compute())
        recall = out["recall"]
        present = rare_present(out["confusion"].sum(1).tolist(), self.rare)  # rows = truth
        out["rare_recall"] = recall[present].mean() if present else torch.tensor(float("nan"))
        out["conf_correct"] = self.conf_correct.compute()
        out["conf_wrong"] = self.conf_wrong.compute()
        return out

    def reset(self) -> None:
        """Clear the running state (Lightning calls this at each epoch end through the module)."""
        self.collection.reset()
        self.conf_correct.reset()
        self.conf_wrong.reset()
