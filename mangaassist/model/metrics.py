"""Classification metrics logged while training, built on torchmetrics.

torchmetrics keeps running state per process and synchronises it across DDP ranks in
``compute()``, so the figures are over the whole validation set however many GPUs ran.
"""

from __future__ import annotations

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


class ClassificationMetrics(nn.Module):
    """Accuracy, macro F1, per-class P/R/F1, rare-class recall, confusion, ECE and confidences.

    Args:
        num_classes: C.
        rare: indices of the rare classes (their mean recall is ``rare_recall``).

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
        out["rare_recall"] = recall[self.rare].mean() if self.rare else torch.tensor(float("nan"))
        out["conf_correct"] = self.conf_correct.compute()
        out["conf_wrong"] = self.conf_wrong.compute()
        return out

    def reset(self) -> None:
        """Clear the running state (Lightning calls this at each epoch end through the module)."""
        self.collection.reset()
        self.conf_correct.reset()
        self.conf_wrong.reset()
