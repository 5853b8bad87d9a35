"""McNemar and the bootstraps: against scipy/torchmetrics references and in their regimes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torchmetrics.functional.classification import multiclass_f1_score

from mangaassist.evaluation.significance import (
    batched_metric,
    bootstrap_ci,
    mcnemar,
    paired_bootstrap,
)


def test_batched_macro_f1_matches_torchmetrics():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, (5, 200))
    p = np.where(rng.random((5, 200)) < 0.6, y, rng.integers(0, 7, (5, 200)))
    p[0][p[0] == 6] = 5  # a class that is never predicted in row 0
    ours = batched_metric(y, p, 7, "macro_f1")
    for row in range(5):
        ref = multiclass_f1_score(torch.tensor(p[row]), torch.tensor(y[row]), 7, average="macro")
        assert ours[row] == pytest.approx(float(ref), abs=1e-6)
    assert batched_metric(y, p, 7, "acc") == pytest.approx((y == p).mean(1))


def test_mcnemar_exact_and_chi2_regimes():
    a = np.array([1] * 8 + [0] * 2 + [1] * 50, dtype=bool)
    b = np.array([0] * 8 + [1] * 2 + [1] * 50, dtype=bool)
    r = mcnemar(a, b)
    assert (r["b"], r["c"], r["method"]) == (8, 2, "exact")
    assert r["p_value"] == pytest.approx(stats.binomtest(8, 10, 0.5).pvalue)
    a = np.array([1] * 40 + [0] * 20, dtype=bool)
    b = ~a
    r = mcnemar(a, b)
    assert r["method"] == "chi2"
    assert r["statistic"] == pytest.approx((abs(40 - 20) - 1) ** 2 / 60)
    assert mcnemar(a, a)["p_value"] == 1.0


def test_bootstrap_ci_contains_the_point_and_narrows_with_n():
    rng = np.random.default_rng(1)
    widths = []
    for n in (100, 2000):
        y = rng.integers(0, 4, n)
        p = np.where(rng.random(n) < 0.8, y, rng.integers(0, 4, n))
        ci = bootstrap_ci(y, p, 4, "acc", n_boot=400, seed=0)
        assert ci["lo"] <= ci["value"] <= ci["hi"]
        widths.append(ci["hi"] - ci["lo"])
    assert widths[1] < widths[0] / 2


def test_paired_bootstrap_tells_noise_from_a_real_gain():
    rng = np.random.default_rng(2)
    n = 1500
    y = rng.integers(0, 5, n)
    base = np.where(rng.random(n) < 0.80, y, rng.integers(0, 5, n))
    # Noise: break 8 right answers and fix 8 wrong ones -> same accuracy, tie.
    right, wrong = np.flatnonzero(base == y), np.flatnonzero(base != y)
    noisy = base.copy()
    noisy[right[:8]] = (y[right[:8]] + 1) % 5
    noisy[wrong[:8]] = y[wrong[:8]]
    assert paired_bootstrap(y, noisy, base, 5, "macro_f1", n_boot=300)["verdict"] == "tie"
    # Real gain: fix 40% of the base model's errors -> better; and the reverse -> worse.
    fixed = np.where((base != y) & (rng.random(n) < 0.4), y, base)
    up = paired_bootstrap(y, fixed, base, 5, "macro_f1", n_boot=300)
    assert up["verdict"] == "better" and up["lo"] > 0 and up["p_value"] < 0.05
    assert paired_bootstrap(y, base, fixed, 5, "acc", n_boot=300)["verdict"] == "worse"
    same = paired_bootstrap(y, base, base, 5, "acc", n_boot=100)
    assert same["diff"] == 0 and same["verdict"] == "tie" and same["p_value"] == 1.0


def test_paired_bootstrap_is_scipys_percentile_bootstrap_and_p_reads_its_distribution():
    rng = np.random.default_rng(3)
    n = 400
    y = rng.integers(0, 4, n)
    a = np.where(rng.random(n) < 0.85, y, rng.integers(0, 4, n))
    b = np.where(rng.random(n) < 0.80, y, rng.integers(0, 4, n))
    ours = paired_bootstrap(y, a, b, 4, "acc", n_boot=500, seed=5)
    ref = stats.bootstrap(
        (y, a, b),
        lambda t, p, q, axis=-1: (t == p).mean(axis) - (t == q).mean(axis),
        n_resamples=500,
        paired=True,
        method="percentile",
        rng=np.random.default_rng(5),
    )
    assert ours["lo"] == pytest.approx(ref.confidence_interval.low)
    assert ours["hi"] == pytest.approx(ref.confidence_interval.high)
    d = ref.bootstrap_distribution
    assert ours["p_value"] == pytest.approx(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())))
    one = bootstrap_ci(y, a, 4, "acc", n_boot=500, seed=5)
    assert one == bootstrap_ci(y, a, 4, "acc", n_boot=500, seed=5)  # the seed fixes it
    assert bootstrap_ci(y[:1], a[:1], 4)["lo"] == bootstrap_ci(y[:1], a[:1], 4)["value"]
