"""KL divergence and the chi-square test against values worked by hand."""

import math

import numpy as np
import pytest

from mangaassist.monitor.drift import chi_square, kl_divergence, smooth


def test_kl_three_classes_by_hand():
    # Live counts (50, 30, 20) of n = 100 -> P = (0.5, 0.3, 0.2); reference Q = (0.4, 0.4, 0.2).
    # KL(P || Q) = 0.5 ln(0.5/0.4) + 0.3 ln(0.3/0.4) + 0.2 ln(0.2/0.2)
    #            = 0.5 x 0.223144 + 0.3 x (-0.287682) + 0
    #            = 0.111572 - 0.086305 = 0.025267 nats
    assert kl_divergence([50, 30, 20], [0.4, 0.4, 0.2], eps=0.0) == pytest.approx(
        0.025267, abs=1e-6
    )
    # Counts or shares give the same Q; the default eps = 1e-4 moves it by < 1e-4 here.
    assert kl_divergence([50, 30, 20], [40, 40, 20]) == pytest.approx(0.025267, abs=1e-4)
    assert kl_divergence([40, 40, 20], [0.4, 0.4, 0.2]) == pytest.approx(0.0, abs=1e-12)


def test_kl_empty_classes_are_smoothed_not_infinite():
    # A live intent the reference never saw: Q = (0.5, 0.5, 0) would make the term infinite.
    # With eps = 0.01: q = ((0.5 + 0.01) / 1.03, (0.5 + 0.01) / 1.03, 0.01 / 1.03)
    #                   = (0.495146, 0.495146, 0.009709)
    # and P = (0, 0, 1) -> p = (0.009709, 0.009709, 0.980583):
    # KL = 2 x 0.009709 ln(0.009709 / 0.495146) + 0.980583 ln(0.980583 / 0.009709)
    #    = 2 x 0.009709 x (-3.931826) + 0.980583 x 4.615121 = -0.076346 + 4.525510 = 4.449164
    got = kl_divergence([0, 0, 7], [5, 5, 0], eps=0.01)
    assert got == pytest.approx(4.449164, abs=1e-5)
    assert np.isfinite(kl_divergence([0, 0, 7], [5, 5, 0], eps=1e-4))
    # A class with no live messages contributes 0 ln 0 = 0 when eps = 0.
    assert kl_divergence([1, 0], [0.5, 0.5], eps=0.0) == pytest.approx(math.log(2))
    assert smooth(np.array([0, 0]), 0.1).tolist() == pytest.approx([0.5, 0.5])


def test_chi_square_by_hand():
    # Expected = n q = 100 x (0.4, 0.4, 0.2) = (40, 40, 20).
    # X^2 = (50-40)^2/40 + (30-40)^2/40 + (20-20)^2/20 = 2.5 + 2.5 + 0 = 5.0, df = 3 - 1 = 2;
    # for df = 2 the chi-square survival function is exp(-x / 2): p = exp(-2.5) = 0.082085.
    stat, p = chi_square([50, 30, 20], [0.4, 0.4, 0.2], eps=0.0)
    assert stat == pytest.approx(5.0)
    assert p == pytest.approx(math.exp(-2.5), rel=1e-6)


def test_the_window_size_decides_significance_not_the_kl():
    # The same shares, (0.5, 0.3, 0.2) against (0.4, 0.4, 0.2), so the same KL = 0.0253 > 0.02:
    # at n = 20 the counts (10, 6, 4) are noise (X^2 = 1.0, p = exp(-0.5) = 0.61); at n = 1000
    # (500, 300, 200) they are not (X^2 = 50, p = exp(-25) ~ 1.4e-11).
    counts = np.array([[10, 6, 4], [500, 300, 200], [0, 0, 0]])
    kl = kl_divergence(counts, [0.4, 0.4, 0.2], eps=0.0)
    stat, p = chi_square(counts, [0.4, 0.4, 0.2], eps=0.0)
    assert kl[0] == pytest.approx(kl[1]) == pytest.approx(0.025267, abs=1e-6)
    assert stat[:2] == pytest.approx([1.0, 50.0])
    assert p[0] == pytest.approx(math.exp(-0.5), rel=1e-6) and p[0] > 0.01
    assert p[1] == pytest.approx(math.exp(-25), rel=1e-6)
    assert (stat[2], p[2]) == (0.0, 1.0)  # an empty window is no evidence of anything
