"""Classification figures checked against a plain numpy reference and sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from mangaassist.errors import UserError
from mangaassist.evaluation.metrics import (
    classification_metrics,
    per_tag_metrics,
    rare_classes,
)

LABELS = ["a", "b", "c", "d"]


def reference(y_true: np.ndarray, y_pred: np.ndarray, c: int) -> dict:
    """Textbook definitions from a confusion matrix (rows = truth)."""
    cm = np.zeros((c, c), dtype=int)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(float)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    precision = np.divide(tp, tp + fp, out=np.zeros(c), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros(c), where=(tp + fn) > 0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(c), where=(2 * tp + fp + fn) > 0)
    present = (tp + fp + fn) > 0  # classes neither in truth nor predicted do not count
    return {
        "acc": tp.sum() / len(y_true),
        "macro_f1": f1[present].mean(),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "cm": cm,
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_numpy_reference_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 300)
    pred = np.where(rng.random(300) < 0.7, y, rng.integers(0, 4, 300))
    m = classification_metrics(y, pred, LABELS)
    ref = reference(y, pred, 4)
    assert m["acc"] == pytest.approx(ref["acc"], abs=1e-6)
    assert m["macro_f1"] == pytest.approx(ref["macro_f1"], abs=1e-6)
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-6)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=range(4), zero_division=0)
    for i, row in enumerate(m["per_class"]):
        assert row["precision"] == pytest.approx(p[i], abs=1e-6)
        assert row["recall"] == pytest.approx(r[i], abs=1e-6)
        assert row["f1"] == pytest.approx(f[i], abs=1e-6)
        assert row["support"] == s[i]
    assert np.array_equal(np.array(m["confusion"]), ref["cm"])


def test_macro_f1_ignores_classes_absent_from_truth_and_predictions():
    y, pred = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    m = classification_metrics(y, pred, LABELS)  # c and d never appear
    assert m["macro_f1"] == pytest.approx(reference(y, pred, 4)["macro_f1"])
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))


def test_rare_recall_is_mean_recall_of_rare_classes_present():
    y = np.array([0, 0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 1, 0, 2, 0])
    m = classification_metrics(y, pred, LABELS, rare=["b", "c", "d"])  # d has no example
    assert m["rare_recall"] == pytest.approx((0.5 + 0.5) / 2)
    assert classification_metrics(y, pred, LABELS, rare=["d"])["rare_recall"] is None
    assert [r["rare"] for r in m["per_class"]] == [False, True, True, True]


def test_rare_classes_uses_train_share():
    counts = {"a": 900, "b": 60, "c": 40}
    assert rare_classes(counts, 0.05) == ["c"]
    assert rare_classes(counts, 0.07) == ["b", "c"]
    assert rare_classes(counts, 0.0) == []
    with pytest.raises(UserError, match="must be >= 0"):
        rare_classes({"a": -1}, 0.05)


def test_per_tag_metrics_score_each_tag_subset():
    y = np.array([0, 1, 2, 3])
    pred = np.array([0, 1, 0, 3])
    tags = [["romaji"], ["romaji", "slang"], ["slang"], []]
    rows = {r["tag"]: r for r in per_tag_metrics(y, pred, tags, LABELS)}
    assert set(rows) == {"romaji", "slang"}
    assert rows["romaji"]["n"] == 2 and rows["romaji"]["acc"] == 1.0
    assert rows["slang"]["n"] == 2 and rows["slang"]["acc"] == 0.5


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        classification_metrics(np.array([0, 1]), np.array([0]), LABELS)
    with pytest.raises(ValueError, match="no examples"):
        classification_metrics(np.array([], int), np.array([], int), LABELS)


def test_per_tag_macro_f1_averages_over_the_classes_in_the_slice_truth():
    # Slice "r": truth [a, a, b], predicted [a, c, b]. F1 a = 2/3, b = 1; c has no true example
    # in the slice (F1 0) and is left out: (2/3 + 1) / 2, not (2/3 + 1 + 0) / 3.
    rows = per_tag_metrics(
        np.array([0, 0, 1]), np.array([0, 2, 1]), [["r"], ["r"], ["r"]], ["a", "b", "c"]
    )
    assert rows[0]["macro_f1"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-6)
