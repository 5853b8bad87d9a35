"""Knowledge distillation: the labels' loss mixed with a teacher's softened probabilities.

Convention (Hinton et al. 2015), with student logits ``s``, teacher logits ``t`` (both raw,
before any calibration temperature), temperature ``T`` and weight ``alpha``::

    loss = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * hard(s, y)

- ``KL(p || q) = sum_c p_c (log p_c - log q_c)``, the teacher's distribution first (the
  student is pulled towards it), summed over classes and averaged over the batch.
- ``T^2``: the soft term's gradients scale as ``1 / T^2``; the factor keeps its weight
  against the hard term the same whatever ``T``.
- ``alpha`` weighs the soft term: ``alpha = 0`` is exactly the hard loss, ``alpha = 1`` is
  pure distillation (the labels unused).
- ``hard`` is the configured loss (``loss=focal_weighted`` by default), class weights and all.

Example (two classes, teacher 3:1, student undecided, T = 2, alpha = 0.5):

    >>> import math, torch
    >>> kd = DistillationLoss(torch.nn.CrossEntropyLoss(), temperature=2.0, alpha=0.5)
    >>> s, t, y = torch.zeros(1, 2), torch.tensor([[2 * math.log(3), 0.0]]), torch.tensor([0])
    >>> round(float(kd(s, y, t)), 4)  # 0.5 * 4 * 0.1308 + 0.5 * ln 2
    0.6082
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def soft_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """``KL(softmax(t / T) || softmax(s / T))``, summed over classes, mean over the batch.

    Args:
        student_logits: (B, C).
        teacher_logits: (B, C), the same label order.
        temperature: ``T > 0``.

    Returns:
        A scalar in float32 (the student's logits may be bf16 under autocast).
    """
    log_q = F.log_softmax(student_logits.float() / temperature, dim=-1)  # (B, C) student
    log_p = F.log_softmax(teacher_logits.float() / temperature, dim=-1)  # (B, C) teacher
    # kl_div(input=log q, target=log p, log_target) = sum p (log p - log q); batchmean / B.
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


class DistillationLoss(nn.Module):
    """``alpha * T^2 * KL(p_teacher || p_student) + (1 - alpha) * hard`` (module docstring).

    Args:
        hard: the labels' loss ``(logits, target) -> scalar`` (the configured criterion).
        temperature: ``T > 0``; 1 is the plain softmax, larger softens both distributions.
        alpha: weight of the soft term in [0, 1].
    """

    def __init__(self, hard: nn.Module, temperature: float = 2.0, alpha: float = 0.5) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"distill.temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"distill.alpha must be in [0, 1], got {alpha}")
        self.hard, self.temperature, self.alpha = hard, float(temperature), float(alpha)

    def parts(
        self, logits: Tensor, target: Tensor, teacher_logits: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``(T^2 * KL, hard)``, the two terms before ``alpha`` mixes them (logged apart).

        Args:
            logits: the student's (B, C).
            target: class indices (B,).
            teacher_logits: the teacher's (B, C) for the same examples.
        """
        if teacher_logits.shape != logits.shape:
            raise ValueError(
                f"teacher logits {tuple(teacher_logits.shape)} do not match the student's "
                f"{tuple(logits.shape)}: the teacher must have the same labels"
            )
        soft = self.temperature**2 * soft_kl(logits, teacher_logits, self.temperature)
        return soft, self.hard(logits, target)

    def mix(self, soft: Tensor, hard: Tensor) -> Tensor:
        """``alpha * soft + (1 - alpha) * hard``; alpha 0 returns ``hard`` itself."""
        if self.alpha == 0.0:
            return hard
        if self.alpha == 1.0:
            return soft
        return self.alpha * soft + (1.0 - self.alpha) * hard

    def forward(self, logits: Tensor, target: Tensor, teacher_logits: Tensor) -> Tensor:
        """The mixed loss (scalar) for student ``logits`` (B, C) and the teacher's (B, C)."""
        return self.mix(*self.parts(logits, target, teacher_logits))
