"""Losses for imbalanced intents: focal loss and inverse-frequency class weights.

Focal loss (Lin et al. 2017) is ``-alpha_t (1 - p_t)^gamma log p_t``: a confident correct
prediction (p_t = 0.9, gamma = 2) keeps 0.01 of its cross-entropy, so the gradient goes to the
hard and rare examples. With ``gamma = 0`` and no weights it is plain cross-entropy.

Secondary intents (multi-ask messages, ``secondary.weight > 0``) add a multi-label term:
``loss = primary + weight * BCE``, BCE with logits on the multi-hot of ``secondary_intents``
averaged over the ``B x C`` entries (:func:`with_secondary`).

Example:
    >>> import torch
    >>> w = class_weights([221, 30])          # product_discovery vs escalation counts
    >>> round(float(w[1] / w[0]), 2)          # the rare class weighs 7.37x more
    7.37
    >>> loss = FocalLoss(gamma=2.0)
    >>> round(float(loss(torch.tensor([[0.0, 0.0]]), torch.tensor([0]))), 4)  # .25 * ln 2
    0.1733
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def class_weights(counts: Sequence[int] | Tensor) -> Tensor:
    """Inverse class frequency, normalised to sum to 1: ``w_c = (1/n_c) / sum_k (1/n_k)``.

    Args:
        counts: training examples per class, in label-index order; every count must be > 0.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if (counts <= 0).any():
        missing = torch.nonzero(counts <= 0).flatten().tolist()
        raise ValueError(f"class(es) {missing} have no training examples; cannot weight them")
    inv = 1.0 / counts
    return (inv / inv.sum()).float()


class FocalLoss(nn.Module):
    """Multi-class focal loss with optional per-class weights ``alpha``.

    ``reduction="mean"`` divides by the summed ``alpha_t`` of the batch, as
    :class:`torch.nn.CrossEntropyLoss` does with ``weight``, so losses stay on one scale
    whether or not the classes are weighted.

    Args:
        gamma: focusing parameter; 0 gives (weighted) cross-entropy.
        weight: ``(C,)`` class weights alpha, or None for 1.
        reduction: ``mean``, ``sum`` or ``none``.
        label_smoothing: eps; the target becomes ``(1 - eps) one_hot + eps / C`` and each
            class's focal term counts with that mass (gamma = 0 gives
            :class:`torch.nn.CrossEntropyLoss` with the same ``label_smoothing``).
    """

    def __init__(
        self,
        gamma: float = 2.0,
        weight: Tensor | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.gamma = gamma
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight).float())

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """``logits`` (B, C), ``target`` (B,) class indices -> loss (scalar, or (B,) for none)."""
        log_p = F.log_softmax(logits.float(), dim=-1)  # (B, C)
        per_class = -((1.0 - log_p.exp()) ** self.gamma) * log_p  # (B, C) focal term
        if self.weight is not None:
            per_class = per_class * self.weight
        # Target mass (B, C): one-hot, or (1 - eps) one-hot + eps / C with smoothing.
        eps, n_classes = self.label_smoothing, logits.shape[-1]
        mass = F.one_hot(target, n_classes).float() * (1.0 - eps) + eps / n_classes
        loss = (mass * per_class).sum(dim=1)  # (B,)
        alpha_t = self.weight[target] if self.weight is not None else torch.ones_like(loss)
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        return loss.sum() / alpha_t.sum()


def secondary_bce(logits: Tensor, target: Tensor) -> Tensor:
    """BCE with logits of the secondary head, the mean over all ``B x C`` entries.

    Args:
        logits: (B, C) raw secondary logits, one independent sigmoid per intent.
        target: (B, C) multi-hot of the secondary intents (the primary label is 0: it is
            never a target).

    Example:
        >>> z = torch.tensor([[0.0, 1.0986123, -1.0986123]])  # sigmoid: 0.5, 0.75, 0.25
        >>> y = torch.tensor([[0.0, 1.0, 0.0]])
        >>> round(float(secondary_bce(z, y)), 4)  # (ln 2 + ln 4/3 + ln 4/3) / 3
        0.4228
    """
    if logits.shape != target.shape:
        raise ValueError(
            f"secondary logits {tuple(logits.shape)} and targets {tuple(target.shape)} differ"
        )
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


def with_secondary(primary: Tensor, logits: Tensor, target: Tensor, weight: float) -> Tensor:
    """``primary + weight * secondary_bce(logits, target)``: the loss with the second head.

    Args:
        primary: the primary loss (scalar), as the configured criterion returns it.
        logits: (B, C) secondary logits.
        target: (B, C) multi-hot secondary targets.
        weight: ``secondary.weight`` (> 0; with 0 there is no head and no call).
    """
    return primary + weight * secondary_bce(logits, target)
