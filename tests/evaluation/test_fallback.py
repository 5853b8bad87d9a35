"""Fallback routing: thresholds, margin, per-intent thresholds for a target precision."""

from __future__ import annotations

import numpy as np
import pytest

from mangaassist.evaluation.fallback import (
    CLARIFY,
    FALLBACK,
    ROUTE,
    FallbackPolicy,
    accuracy_above,
    choose_thresholds,
    fallback_summary,
    risk_coverage,
)


def test_route_applies_threshold_then_margin():
    policy = FallbackPolicy(global_threshold=0.6, margin=0.2, thresholds={"b": 0.85})
    probs = np.array(
        [
            [0.90, 0.05, 0.05],  # confident a -> route
            [0.50, 0.30, 0.20],  # below 0.6 -> fallback
            [0.62, 0.05, 0.33],  # above 0.6 but 0.62 - 0.33 > 0.2 -> route
            [0.62, 0.00, 0.38],  # margin 0.24 -> route
            [0.05, 0.80, 0.15],  # b needs 0.85 -> fallback
            [0.61, 0.00, 0.39],  # margin 0.22 -> route
            [0.65, 0.00, 0.35],
        ]
    )
    probs[5] = [0.61, 0.0, 0.39]
    assert policy.route(probs, ["a", "b", "c"]).tolist() == [
        ROUTE,
        FALLBACK,
        ROUTE,
        ROUTE,
        FALLBACK,
        ROUTE,
        ROUTE,
    ]
    tight = FallbackPolicy(global_threshold=0.3, margin=0.3)
    assert tight.route(np.array([[0.5, 0.4, 0.1]]), ["a", "b", "c"]).tolist() == [CLARIFY]


def test_global_threshold_is_a_floor_for_per_intent_thresholds():
    policy = FallbackPolicy(global_threshold=0.6, thresholds={"a": 0.3, "b": 0.9})
    assert policy.threshold_vector(["a", "b", "c"]).tolist() == [0.6, 0.9, 0.6]


def test_chosen_thresholds_reach_the_target_precision_with_most_coverage():
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.integers(0, 3, n)
    conf = rng.uniform(0.34, 1.0, n)
    # Right with probability equal to the confidence: a calibrated toy classifier.
    right = rng.random(n) < conf
    pred = np.where(right, y, (y + rng.integers(1, 3, n)) % 3)
    probs = np.full((n, 3), 0.0)
    probs[np.arange(n), pred] = conf
    probs[np.arange(n), (pred + 1) % 3] = 1 - conf
    chosen, unreached = choose_thresholds(probs, y, ["a", "b", "c"], 0.9, min_support=20)
    assert unreached == []
    for c, label in enumerate("abc"):
        t = chosen[label]
        kept = (pred == c) & (conf >= t)
        assert (y[kept] == c).mean() >= 0.9
        # The next lower distinct confidence would miss the target (t is the lowest that works)
        lower = np.sort(conf[(pred == c) & (conf < t)])
        if lower.size:
            k2 = (pred == c) & (conf >= lower[-1])
            assert (y[k2] == c).mean() < 0.9 or lower[-1] == t


def test_unreachable_target_caps_and_low_support_skips():
    probs = np.array([[0.9, 0.1]] * 30 + [[0.2, 0.8]] * 5)
    y = np.array([1] * 30 + [1] * 5)  # every "a" prediction is wrong
    chosen, unreached = choose_thresholds(
        probs, y, ["a", "b"], 0.9, min_support=10, max_threshold=0.95
    )
    assert chosen == {"a": 0.95} and unreached == [
        "a"
    ]  # b has 5 predictions < 10: no own threshold


def test_risk_coverage_and_accuracy_above():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    y = np.array([0, 1, 1, 0])
    rc = risk_coverage(probs, y)
    # Order by confidence: 0.9 (right), 0.8 (wrong), 0.7 (right), 0.55 (wrong)
    assert rc["risk"].tolist() == pytest.approx([0, 0.5, 1 / 3, 0.5])
    assert rc["coverage"].tolist() == [0.25, 0.5, 0.75, 1.0]
    rows = {r["threshold"]: r for r in accuracy_above(probs, y, [0.0, 0.75, 0.95])}
    assert rows[0.0]["coverage"] == 1.0 and rows[0.0]["accuracy"] == 0.5
    assert rows[0.75]["coverage"] == 0.5 and rows[0.75]["accuracy"] == 0.5
    assert rows[0.95]["accuracy"] is None


def test_fallback_summary_rates_add_up():
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.5, 0.5]])
    s = fallback_summary(FallbackPolicy(0.6, 0.1), probs, np.array([0, 1, 1, 0]), ["a", "b"])
    assert s["routed_rate"] + s["fallback_rate"] + s["clarify_rate"] == pytest.approx(1.0)
    assert s["routed_rate"] == 0.5 and s["routed_accuracy"] == 1.0
    assert s["low_confidence_rate"] == 0.5
