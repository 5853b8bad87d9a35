"""Secondary-intent metrics and the threshold choice, against figures worked out by hand."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mangaassist.data.schema import Example, write_examples
from mangaassist.errors import UserError
from mangaassist.evaluation.secondary import (
    SecondaryPolicy,
    choose_threshold,
    evaluate_secondary,
    fit_policy,
    headline,
    log_line,
    predict_matrix,
    secondary_metrics,
    true_matrix,
)

LABELS = ["a", "b", "c", "d"]


def sets(rows: list[set[str]], labels: list[str] = LABELS) -> np.ndarray:
    return np.array([[lab in row for lab in labels] for row in rows], dtype=bool)


def test_metrics_on_hand_made_sets():
    true = sets([{"b", "c"}, {"c"}, set(), set(), {"d"}])
    pred = sets([{"b"}, {"c", "d"}, set(), {"a"}, {"d"}])
    m = secondary_metrics(true, pred)
    # Multi-ask messages 1, 2, 5: right pairs b, c, d = 3 of 4 predicted and of 4 true;
    # only message 5 has its exact set.
    assert (m["n"], m["n_multi"], m["n_single"]) == (5, 3, 2)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["exact_match"] == pytest.approx(1 / 3)
    # All messages: message 4's false "a" counts too: 3 right of 5 predicted.
    assert m["precision_all"] == pytest.approx(3 / 5)
    assert m["recall_all"] == pytest.approx(3 / 4)
    assert m["f1_all"] == pytest.approx(2 * 3 / (5 + 4))
    assert m["false_single_rate"] == pytest.approx(1 / 2)
    assert (m["true_pairs"], m["predicted_pairs"], m["correct_pairs"]) == (4, 5, 3)


def test_nothing_predicted_gives_no_precision_and_zero_recall():
    m = secondary_metrics(sets([{"b"}, set()]), sets([set(), set()]))
    assert m["precision"] is None and m["precision_all"] is None and m["f1_all"] is None
    assert m["recall"] == 0.0 and m["exact_match"] == 0.0 and m["false_single_rate"] == 0.0
    line = log_line(m | {"threshold": 0.5}, "test")
    assert line.startswith("[EVAL_SECONDARY] set=test precision=na recall=0.0 exact_match=0.0 ")
    assert "n_multi=1 " in line and line.endswith("threshold=0.50")


def test_true_sets_leave_out_the_own_label_and_refuse_unknown_intents():
    true = true_matrix([["b", "a"], []], ["a", "c"], LABELS)
    assert true.tolist() == [[False, True, False, False], [False] * 4]
    with pytest.raises(UserError, match="'shipping' of message 0 is not one of"):
        true_matrix([["shipping"]], ["a"], LABELS)


def test_the_predicted_primary_is_masked_out():
    probs = np.array([[0.9, 0.6, 0.1], [0.2, 0.7, 0.8]])
    assert predict_matrix(probs, 0.5).tolist() == [[True, True, False], [False, True, True]]
    masked = predict_matrix(probs, 0.5, np.array([0, 2]))
    assert masked.tolist() == [[False, True, False], [False, True, False]]


# A toy validation set: 4 messages, 3 intents, every primary predicted as intent 0.
# True pairs score 0.7, 0.55, 0.8, 0.355; false ones 0.9 (the primary), 0.1, 0.2, 0.305, 0.1,
# 0.4, 0.2, 0.05 (off the 0.01 grid, so no score sits on a threshold tried).
VAL_TRUE = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0], [0, 1, 1]], dtype=bool)
VAL_PROBS = np.array([[0.9, 0.7, 0.1], [0.2, 0.305, 0.55], [0.1, 0.4, 0.2], [0.05, 0.8, 0.355]])
PRIMARY = np.zeros(4, dtype=np.int64)


def test_threshold_choice_on_a_toy_validation_set():
    # No mask: at t in (0.305, 0.355] all 4 true pairs and the 0.9 and 0.4 false ones are
    # predicted, F1 = 2*4 / (6 + 4) = 0.8, the best; grid points 0.31..0.35, centre 0.33.
    assert choose_threshold(VAL_TRUE, VAL_PROBS) == (0.33, pytest.approx(0.8))
    # Masking the primary drops the 0.9: F1 = 2*4 / (5 + 4) = 8/9 on the same plateau.
    assert choose_threshold(VAL_TRUE, VAL_PROBS, PRIMARY) == (0.33, pytest.approx(8 / 9))
    # Between 0.40 and 0.55 (3 right of 3 predicted with the mask) F1 is 6/7, not the best.
    m = secondary_metrics(VAL_TRUE, predict_matrix(VAL_PROBS, 0.5, PRIMARY))
    assert m["f1_all"] == pytest.approx(6 / 7)
    with pytest.raises(ValueError, match="no message has a secondary intent"):
        choose_threshold(np.zeros((2, 3), dtype=bool), VAL_PROBS[:2])


def _fake_run(tmp_path: Path) -> SimpleNamespace:
    """A run stand-in whose heads return the toy logits; its val file holds the toy sets."""
    labels = ["a", "b", "c"]
    secondaries = [["b"], ["c"], [], ["b", "c"]]
    examples = [
        Example(text=f"message {i}", label="a", secondary_intents=s)
        for i, s in enumerate(secondaries)
    ]
    write_examples(examples, tmp_path / "data" / "val.jsonl")
    primary = np.tile([2.0, 0.0, 0.0], (4, 1))  # argmax 0 for every message
    secondary = np.log(VAL_PROBS / (1 - VAL_PROBS))  # sigmoid gives VAL_PROBS back
    return SimpleNamespace(
        labels=labels, path=tmp_path, predict_heads=lambda texts: (primary, secondary)
    )


def test_fit_policy_chooses_on_validation_and_the_policy_round_trips(tmp_path):
    run = _fake_run(tmp_path)
    policy = fit_policy(run, tmp_path / "data" / "val.jsonl", {"mask_primary": True})
    assert policy.threshold == 0.33 and policy.mask_primary
    assert policy.chosen_on == "data/val.jsonl"
    assert policy.val["f1_all"] == pytest.approx(8 / 9) and policy.val["n_multi"] == 3
    policy.save(tmp_path / "secondary.json")
    assert SecondaryPolicy.load(tmp_path / "secondary.json") == policy
    assert json.loads((tmp_path / "secondary.json").read_text())["threshold"] == 0.33
    # A configured threshold is used as it is; validation only reports on it.
    fixed = fit_policy(run, tmp_path / "data" / "val.jsonl", {"threshold": 0.6})
    assert (fixed.threshold, fixed.chosen_on) == (0.6, "config")
    assert fixed.val["precision_all"] == 1.0 and fixed.val["recall_all"] == 0.5  # 0.8, 0.7
    # No validation split: the default, said so.
    none = fit_policy(run, None, {})
    assert none.threshold == 0.5 and none.chosen_on.startswith("default")


def test_a_malformed_policy_file_names_itself(tmp_path):
    (tmp_path / "secondary.json").write_text('{"threshold": 0.5, "colour": 1}')
    with pytest.raises(UserError, match=r"secondary\.json: not a secondary-intent policy"):
        SecondaryPolicy.load(tmp_path / "secondary.json")


def test_evaluate_secondary_names_the_predicted_intents():
    examples = [
        Example(text="x", label="a", secondary_intents=["b"]),
        Example(text="y", label="c", secondary_intents=[]),
    ]
    logits = np.array([[3.0, 2.0, -3.0, -3.0], [-3.0, -3.0, 3.0, 1.0]])  # sigmoid .95 .88 .73
    m, names = evaluate_secondary(logits, np.array([0, 2]), examples, LABELS, SecondaryPolicy(0.7))
    assert names == [["b"], ["d"]]  # the primaries a and c are masked out
    assert (m["precision"], m["recall"], m["precision_all"], m["false_single_rate"]) == (
        1.0,
        1.0,
        0.5,
        1.0,
    )
    assert m["threshold"] == 0.7 and m["chosen_on"] == ""
    flat = headline(m, "test")
    assert flat["test/secondary_precision_all"] == 0.5 and flat["test/secondary_n_multi"] == 1.0
    assert headline(None, "test") == {}
