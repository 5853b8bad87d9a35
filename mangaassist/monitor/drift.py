"""Intent-mix drift of windows against a reference: smoothed KL divergence and a chi-square test.

``kl_div`` = KL(P_live || Q_ref) = sum_i p_i ln(p_i / q_i), in nats, the runbook's unit (watch
~0.012, alert > 0.02, retrain ~0.028). A class with no live messages adds 0 (0 ln 0 = 0) but a
live intent the reference never saw would make it infinite, so both distributions get additive
smoothing first: ``p_i <- (p_i + eps) / (1 + K eps)`` with ``eps = kl_epsilon`` (1e-4 by
default: it moves a realistic KL by < 1e-3, and caps an unseen class's term near
``p ln(p / 1e-4)``).

KL alone does not know the window's size: the plug-in KL of a window of ``n`` messages drawn
from Q itself is about ``(K - 1) / (2 n)`` on average (0.045 for 10 intents and 100 messages),
above the alert threshold on pure noise. So each window also gets Pearson's chi-square test of
its counts against ``n * q`` (``scipy.stats.chisquare``, K - 1 degrees of freedom, on the
smoothed q so no expected count is 0): the rules require ``kl_div`` large (the effect) **and**
``chi2_p`` small (the evidence). On a large window the test alone would flag harmless moves,
and on a small one KL alone would flag noise.

Example:
    >>> p, q = [50, 30, 20], [0.4, 0.4, 0.2]
    >>> round(float(kl_divergence(p, q, eps=0.0)), 5)
    0.02527
    >>> stat, pval = chi_square(p, q, eps=0.0)
    >>> round(float(stat), 3), round(float(pval), 4)
    (5.0, 0.0821)
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def smooth(dist: np.ndarray, eps: float) -> np.ndarray:
    """Normalise rows of counts or shares, then ``(p + eps) / (1 + K eps)``; shape kept.

    An all-zero row becomes uniform (no information), so every row sums to 1.
    """
    d = np.asarray(dist, dtype=float)
    total = d.sum(axis=-1, keepdims=True)
    p = np.divide(d, total, out=np.zeros_like(d), where=total > 0) + eps
    s = p.sum(axis=-1, keepdims=True)
    uniform = np.full_like(p, 1.0 / d.shape[-1])
    return np.divide(p, s, out=uniform, where=s > 0)  # = (p + eps) / (1 + K eps) if non-empty


def kl_divergence(live, ref, eps: float = 1e-4) -> np.ndarray:
    """KL(P_live || Q_ref) in nats, per row of ``live`` (counts (W, K) or (K,)).

    Args:
        live: counts (or shares) per class, one row per window.
        ref: the reference counts or shares (K,), same class order.
        eps: additive smoothing (see the module docstring); 0 gives the plain KL.
    """
    p, q = smooth(live, eps), smooth(ref, eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / q), 0.0)  # 0 ln 0 = 0
    return terms.sum(axis=-1)


def chi_square(live, ref, eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Pearson chi-square of live counts against ``n * q`` per row: (statistic, p-value).

    The window's own size ``n`` sets the expected counts, so 30 messages need a much larger
    shift than 30,000 for the same p-value. Rows with ``n = 0`` give (0, 1).
    """
    obs = np.atleast_2d(np.asarray(live, dtype=float))
    q = smooth(ref, eps)
    n = obs.sum(axis=1, keepdims=True)
    expected = n * q
    stat = np.zeros(len(obs))
    pval = np.ones(len(obs))
    ok = n[:, 0] > 0
    if ok.any():
        res = stats.chisquare(obs[ok], expected[ok], axis=1)
        stat[ok], pval[ok] = res.statistic, res.pvalue
    shape = np.shape(live)[:-1]
    return stat.reshape(shape), pval.reshape(shape)
