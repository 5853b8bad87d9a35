"""Checkpoint selection: max macro F1 subject to the latency budget."""

from __future__ import annotations

from mangaassist.evaluation.selection import Candidate, criterion, select_checkpoint


def test_best_macro_f1_within_budget():
    cands = [Candidate(1, 0.80, 9.0), Candidate(2, 0.88, 15.0), Candidate(3, 0.84, 14.9)]
    assert select_checkpoint(cands, 15.0).epoch == 3  # 15.0 is not < 15.0


def test_ties_prefer_faster_then_earlier():
    cands = [Candidate(1, 0.84, 12.0), Candidate(2, 0.84, 10.0), Candidate(3, 0.84, 10.0)]
    assert select_checkpoint(cands, 15.0).epoch == 2


def test_none_within_budget_or_empty():
    assert select_checkpoint([Candidate(1, 0.9, 30.0)], 15.0) is None
    assert select_checkpoint([], 15.0) is None
    assert criterion(15.0) == "max macro_f1 subject to p95 < 15ms"
