import itertools

import numpy as np
import pytest
import torch

from mangaassist.model.metrics import ClassificationMetrics, rare_class_indices


def reference_ece(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Guo et al. 2017: sum over equal-width confidence bins of |acc - conf| * bin share."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs((pred[in_bin] == y[in_bin]).mean() - conf[in_bin].mean())
    return ece


def test_ece_matches_reference_computation():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 6)) * 3
    y = rng.integers(0, 6, size=500)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = ClassificationMetrics(6)
    m.update(torch.tensor(logits), torch.tensor(y))
    assert m.compute()["ece"].item() == pytest.approx(reference_ece(probs, y), abs=1e-4)


def test_accuracy_f1_rare_recall_and_confidences():
    m = ClassificationMetrics(3, rare=[2])
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    m.update(logits, torch.tensor([0, 1, 2, 2]))
    out = m.compute()
    assert out["acc"].item() == pytest.approx(0.75)
    assert out["recall"].tolist() == pytest.approx([1.0, 1.0, 0.5])
    assert out["rare_recall"].item() == pytest.approx(0.5)
    assert out["confusion"].tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    conf = torch.softmax(logits[0], -1).max().item()
    assert out["conf_correct"].item() == pytest.approx(conf, rel=1e-5)
    assert out["conf_wrong"].item() == pytest.approx(conf, rel=1e-5)
    # macro F1 = mean of per-class F1: (1 + 2/3 + 2/3) / 3
    assert out["macro_f1"].item() == pytest.approx((1 + 2 / 3 + 2 / 3) / 3, rel=1e-5)


def test_rare_classes_below_share():
    # The production mix (per mille): checkout_help 4.1% and escalation 3.0% are rare.
    assert rare_class_indices([221, 152, 180, 80, 121, 70, 50, 41, 30, 55], below=0.05) == [7, 8]
    assert rare_class_indices([10, 10], below=0.05) == []


def test_rare_recall_leaves_out_a_rare_class_absent_from_the_set():
    """Same rule as evaluation and the gate: an absent class's recall is undefined, not 0."""
    m = ClassificationMetrics(3, rare=[1, 2])
    m.update(torch.tensor([[4.0, 0, 0], [0, 4.0, 0]]), torch.tensor([0, 1]))  # no class-2 example
    assert float(m.compute()["rare_recall"]) == 1.0
