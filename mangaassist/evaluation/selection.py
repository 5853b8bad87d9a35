"""Checkpoint selection: the best macro F1 among checkpoints fast enough to serve.

Example:
    >>> c = [Candidate(1, 0.80, 9.0), Candidate(2, 0.86, 16.2), Candidate(3, 0.84, 11.0)]
    >>> select_checkpoint(c, budget_ms=15.0).epoch
    3
    >>> criterion(15.0)
    'max macro_f1 subject to p95 < 15ms'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One checkpoint: its epoch, validation macro F1 (fraction) and batch-1 P95 (ms)."""

    epoch: int
    macro_f1: float
    p95_ms: float
    path: str = ""


def criterion(budget_ms: float) -> str:
    """The rule in words, for the ``[CHECKPOINT] criterion="..."`` log line."""
    return f"max macro_f1 subject to p95 < {budget_ms:g}ms"


def select_checkpoint(candidates: Sequence[Candidate], budget_ms: float = 15.0) -> Candidate | None:
    """Highest macro F1 among candidates with ``p95_ms < budget_ms``.

    Ties go to the lower P95, then to the earlier epoch (less training, same quality).

    Returns:
        The chosen candidate, or None when none is within the budget (the caller decides
        whether to fall back to the fastest one or to fail).
    """
    fast = [c for c in candidates if c.p95_ms < budget_ms]
    if not fast:
        return None
    return min(fast, key=lambda c: (-c.macro_f1, c.p95_ms, c.epoch))
