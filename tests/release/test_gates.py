"""Promotion gates on synthetic metric tables: each gate's pass and fail, and the tree."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mangaassist.errors import UserError
from mangaassist.evaluation.settings import GateSettings, GoldenFloors, Significance
from mangaassist.release.gates import (
    FAIL,
    PASS,
    SKIP,
    Scores,
    decide,
    format_decision,
    gate_ece,
    gate_golden_floors,
    gate_latency,
    gate_paired,
    gate_rare_recall,
)

C = 5
FAST = GateSettings(significance=Significance(n_boot=300))


def predictions(acc: float, n: int = 2000, seed: int = 0, y: np.ndarray | None = None):
    """Labels and predictions right on exactly round(acc * n) examples."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n) if y is None else y
    pred = (y + 1) % C
    right = rng.permutation(n)[: round(acc * n)]
    pred[right] = y[right]
    return y, pred


def scores(y, pred, *, ece=0.03, p95=8.0, rare=(4,)) -> Scores:
    return Scores.from_predictions(y, pred, C, rare_idx=rare, ece=ece, p95_ms=p95)


@pytest.fixture
def champion():
    y, pred = predictions(0.85)
    return scores(y, pred)


def test_scores_figures():
    y = np.array([0, 1, 4, 4])
    s = scores(y, np.array([0, 1, 4, 0]))
    assert s.acc == 0.75 and s.rare_recall == 0.5
    assert s.correct.tolist() == [True, True, True, False]


def test_latency_gate():
    y, p = predictions(0.9, n=50)
    assert gate_latency(scores(y, p, p95=14.9), 15.0).status == PASS
    assert gate_latency(scores(y, p, p95=15.0), 15.0).status == FAIL
    assert gate_latency(scores(y, p, p95=None), 15.0).status == FAIL


def test_golden_floors():
    s = GateSettings(golden_floors=GoldenFloors(acc=0.8, macro_f1=0.0, rare_recall=0.7))
    y, p = predictions(0.9, n=500)
    assert [g.status for g in gate_golden_floors(scores(y, p), s)] == [PASS, PASS, PASS]
    y, p = predictions(0.7, n=500)
    assert gate_golden_floors(scores(y, p), s)[0].status == FAIL
    assert {g.status for g in gate_golden_floors(None, s)} == {SKIP}
    no_rare = scores(y, p, rare=())
    assert gate_golden_floors(no_rare, s)[2].status == SKIP


@pytest.mark.parametrize("metric", ["acc", "macro_f1"])
def test_paired_gate_fails_only_on_a_significant_drop(champion, metric):
    y = champion.y_true
    # 0.4pp lower: within noise on 2000 examples -> tie, passes.
    _, close = predictions(0.846, y=y, seed=1)
    tie = gate_paired(scores(y, close), champion, metric, FAST)
    assert tie.status == PASS and tie.verdict == "tie", tie
    # 6pp lower: a real regression -> worse, fails.
    _, low = predictions(0.79, y=y, seed=1)
    worse = gate_paired(scores(y, low), champion, metric, FAST)
    assert worse.status == FAIL and worse.verdict == "worse"
    # 6pp higher -> better.
    _, high = predictions(0.91, y=y, seed=1)
    assert gate_paired(scores(y, high), champion, metric, FAST).verdict == "better"


def test_accuracy_can_use_the_bootstrap_instead_of_mcnemar(champion):
    s = dataclasses.replace(FAST, significance=Significance(accuracy_test="bootstrap", n_boot=200))
    _, low = predictions(0.79, y=champion.y_true, seed=1)
    g = gate_paired(scores(champion.y_true, low), champion, "acc", s)
    assert g.status == FAIL and "paired_bootstrap" in g.significance
    g = gate_paired(scores(champion.y_true, low), champion, "acc", FAST)
    assert "mcnemar" in g.significance


def test_paired_gate_needs_the_same_examples(champion):
    y, p = predictions(0.85, seed=5)
    with pytest.raises(ValueError, match="same examples"):
        gate_paired(scores(y, p), champion, "acc", FAST)


def test_rare_recall_gate_allows_a_margin():
    y = np.array([4] * 100 + [0] * 100)
    champ = scores(y, y.copy())  # rare recall 1.0
    within = y.copy()
    within[:2] = 0  # 0.98
    assert gate_rare_recall(scores(y, within), champ, 0.02).status == PASS
    beyond = y.copy()
    beyond[:5] = 0  # 0.95
    assert gate_rare_recall(scores(y, beyond), champ, 0.02).status == FAIL
    assert gate_rare_recall(scores(y, y, rare=()), champ, 0.02).status == SKIP


def test_ece_gate_allows_a_margin():
    y, p = predictions(0.9, n=100)
    champ = scores(y, p, ece=0.030)
    assert gate_ece(scores(y, p, ece=0.039), champ, 0.01).status == PASS
    assert gate_ece(scores(y, p, ece=0.041), champ, 0.01).status == FAIL


def test_no_champion_only_floors_apply():
    y, p = predictions(0.9, n=400)
    cand = scores(y, p)
    d = decide(cand, None, cand, FAST)
    assert d.promote and "no champion" in d.reason
    assert [g.name for g in d.gates] == [
        "latency_p95",
        "golden_acc",
        "golden_macro_f1",
        "golden_rare_recall",
        # operational floors: skipped without a load test or shadow report
        "load_p95",
        "load_error_rate",
        "shadow",
    ]
    assert {g.status for g in d.gates[-3:]} == {SKIP}
    slow = scores(y, p, p95=20.0)
    d = decide(slow, None, cand, FAST)
    assert not d.promote and "latency_p95" in d.reason


def test_decision_tree_paths(champion):
    y = champion.y_true
    _, hi = predictions(0.91, y=y, seed=1)
    better = scores(y, hi)
    d = decide(better, champion, better, FAST, champion_name="v1")
    assert d.promote, format_decision(d)
    assert d.path == [
        "floors=pass",
        "champion=v1",
        "regressions=none",
        "gain=acc,macro_f1(significant, holm)",
    ]

    _, close = predictions(0.852, y=y, seed=1)
    same = scores(y, close)
    d = decide(same, champion, same, FAST, champion_name="v1")
    assert not d.promote and "no significant gain" in d.reason  # noise does not promote
    relaxed = dataclasses.replace(FAST, require_significant_gain=False)
    assert decide(same, champion, same, relaxed).promote  # ... unless gains are not required

    badly_calibrated = scores(y, hi, ece=0.2)
    d = decide(badly_calibrated, champion, better, FAST)
    assert not d.promote and "ece" in d.reason

    _, lo = predictions(0.79, y=y, seed=1)
    d = decide(scores(y, lo), champion, better, FAST, champion_name="v1")
    assert not d.promote and d.reason.startswith("regression(s) vs v1: acc, macro_f1")


def _one_test_just_significant():
    """Champion and candidate where McNemar gives p = 0.031 on accuracy and macro F1 is noise.

    The candidate fixes 40 of the champion's errors and makes 22 new ones (McNemar chi-square
    p = 0.031), 4 of them on a small class of 100 examples, which costs macro F1 about what
    the fixes gain (bootstrap p ~ 0.27). No class is rare, so only acc and macro F1 decide.
    """
    n_small = 100
    y = np.array([0, 1, 2, 3] * ((2000 - n_small) // 4) + [4] * n_small)
    champ = y.copy()
    common = np.flatnonzero(y != 4)
    wrong = np.random.default_rng(0).permutation(common)[:250]
    champ[wrong] = (y[wrong] + 1) % 4
    cand = champ.copy()
    cand[wrong[:40]] = y[wrong[:40]]
    still_right = [i for i in common if champ[i] == y[i]]
    broken = [*np.flatnonzero(y == 4)[:4], *still_right[:18]]
    cand[broken] = (y[broken] + 1) % 4
    return scores(y, cand, rare=()), scores(y, champ, rare=())


def test_one_gain_just_under_alpha_does_not_promote_after_holm():
    cand, champ = _one_test_just_significant()
    s = GateSettings(significance=Significance(n_boot=1000))
    acc, f1 = (gate_paired(cand, champ, m, s) for m in ("acc", "macro_f1"))
    # Uncorrected, this passed before: accuracy alone was "significantly better".
    assert 0.025 < acc.p_value < 0.05 and acc.verdict == "better"
    assert f1.p_value > 0.2 and f1.verdict == "tie"
    d = decide(cand, champ, None, s, champion_name="v1")
    assert not d.promote and "no significant gain" in d.reason, format_decision(d)
    assert d.path[-1] == "gain=none(within noise, holm)"
    gain = d.gates[-1]
    assert gain.name == "gain" and gain.status == FAIL
    # The table line names the rule and the Holm-adjusted p (2 x 0.031 > 0.05).
    assert gain.figures.startswith(
        "holm-bonferroni over 2 tests, alpha=0.05: acc p=0.0308 adj=0.0617"
    )
    # Requiring both tests is the stricter documented alternative: rejected as well.
    both = GateSettings(significance=Significance(n_boot=1000, gain_correction="both"))
    d = decide(cand, champ, None, both)
    assert not d.promote and d.gates[-1].figures.startswith("both must be significant")


def test_holm_still_promotes_a_clear_gain(champion):
    y = champion.y_true
    _, hi = predictions(0.91, y=y, seed=1)
    d = decide(scores(y, hi), champion, None, FAST, champion_name="v1")
    assert d.promote and d.gates[-1].status == PASS
    assert d.gates[-1].figures.endswith("gain=acc,macro_f1")


def test_holm_adjusted_p_values():
    from mangaassist.release.gates import holm_adjusted

    # Smallest x2, then kept monotone: the second can never fall below the first.
    assert holm_adjusted([0.03, 0.40]) == [0.06, 0.40]
    assert holm_adjusted([0.04, 0.01]) == [0.04, 0.02]
    assert holm_adjusted([0.6, 0.9]) == [1.0, 1.0]


def test_uncorrected_gain_is_not_a_setting():
    with pytest.raises(UserError, match="gain_correction"):
        Significance(gain_correction="none")


def test_format_decision_lines(champion):
    y = champion.y_true
    _, hi = predictions(0.91, y=y, seed=1)
    d = decide(scores(y, hi), champion, None, FAST, champion_name="v1")
    lines = format_decision(d)
    assert lines[-1].startswith("[DECISION] promote=yes reason=")
    assert lines[-2].startswith("[PATH] floors=pass -> champion=v1")
    assert any(
        line.startswith("[GATE] name=acc status=pass") and "mcnemar" in line for line in lines
    )
    assert any("name=golden_acc status=skip" in line for line in lines)


def test_golden_floors_show_the_interval_and_say_within_noise():
    y, p = predictions(0.9, n=500)
    golden = scores(y, p)
    lo = gate_golden_floors(golden, FAST)[0]
    # A floor just under the point estimate: passed, but the interval reaches below it.
    near = dataclasses.replace(FAST, golden_floors=GoldenFloors(acc=golden.acc - 0.005))
    g = gate_golden_floors(golden, near)[0]
    assert g.status == PASS and g.figures.endswith(": within noise"), g.figures
    assert "(95% CI " in g.figures
    far = dataclasses.replace(FAST, golden_floors=GoldenFloors(acc=golden.acc - 0.1))
    assert gate_golden_floors(golden, far)[0].figures.endswith(": met")
    above = dataclasses.replace(FAST, golden_floors=GoldenFloors(acc=golden.acc + 0.01))
    g = gate_golden_floors(golden, above)[0]
    assert g.status == FAIL and g.figures.endswith(": not met")
    rare = gate_golden_floors(golden, FAST)[2]
    assert "CI na" not in rare.figures and "(95% CI " in rare.figures
    assert lo.figures.startswith(f"{100 * golden.acc:.2f} (95% CI ")
