"""Temperature scaling and calibration error, and the ``calibration.json`` that carries them.

Temperature scaling (Guo et al. 2017) divides the logits by one scalar T > 0 fitted on the
validation split by minimising negative log-likelihood; it changes confidences, never the
top-1 prediction. ECE is the L1, top-label expected calibration error over 15 equal-width
bins, computed by torchmetrics.

The fitted values go to ``calibration.json``, whose schema (:class:`Calibration`) and use
(``softmax(logits / T)``, the fallback rule) belong to the torch-free runtime,
:mod:`mangaassist.inference.policy`, shared with serving.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(4000, 5)) * 3
    >>> y = np.array([rng.choice(5, p=p) for p in softmax(z, 2.0)])
    >>> 1.8 < fit_temperature(z, y) < 2.2  # labels drawn at T=2: the logits are too sharp
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torchmetrics.functional.classification import multiclass_calibration_error

from mangaassist.atomic import replacing
from mangaassist.checkpoint import load_checkpoint
from mangaassist.errors import UserError
from mangaassist.evaluation.fallback import choose_thresholds
from mangaassist.inference.policy import CALIBRATION_FILE, Calibration, softmax

__all__ = [
    "CALIBRATION_FILE",
    "Calibration",
    "at_search_bound",
    "calibrate",
    "expected_calibration_error",
    "fit_temperature",
    "nll",
    "reliability_bins",
    "softmax",
    "write_checkpoint_temperature",
]


def nll(logits: np.ndarray, y_true: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (nats) of the true labels at temperature T."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(z)), y_true]))


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE, L1 over ``n_bins`` equal-width confidence bins (torchmetrics).

    Args:
        probs: (N, C) probabilities (rows sum to 1).
        y_true: (N,) true indices.
    """
    p = torch.as_tensor(np.asarray(probs, dtype=np.float64))
    t = torch.as_tensor(np.asarray(y_true), dtype=torch.long)
    return float(
        multiclass_calibration_error(p, t, num_classes=p.shape[1], n_bins=n_bins, norm="l1")
    )


def reliability_bins(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> dict:
    """Per confidence bin: mean confidence, accuracy and count, for the reliability diagram.

    Bins are [k/n, (k+1)/n), the last one closed at 1.0. Empty bins have ``None``.
    """
    conf, correct = probs.max(axis=1), probs.argmax(axis=1) == y_true
    idx = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    hit_sum = np.bincount(idx, weights=correct.astype(float), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf, acc = conf_sum / count, hit_sum / count
    return {
        "edges": np.linspace(0, 1, n_bins + 1).tolist(),
        "confidence": [None if n == 0 else float(v) for n, v in zip(count, mean_conf, strict=True)],
        "accuracy": [None if n == 0 else float(v) for n, v in zip(count, acc, strict=True)],
        "count": count.tolist(),
    }


def fit_temperature(
    logits: np.ndarray, y_true: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)
) -> float:
    """The temperature that minimises validation NLL, by bounded 1-D search on log T.

    NLL is convex in 1/T, hence unimodal in log T, so Brent's bounded search finds the
    minimum; searching log T treats "twice as sharp" and "twice as flat" alike.

    Args:
        logits: (N, C) raw validation logits.
        y_true: (N,) true indices.
        bounds: (T_min, T_max).
    """
    if len(logits) == 0:
        raise ValueError("cannot fit a temperature on zero examples")
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(
        lambda log_t: nll(logits, y_true, float(np.exp(log_t))),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(np.exp(res.x))


def at_search_bound(temperature: float, bounds: tuple[float, float]) -> bool:
    """Whether a fitted T lies within 1% of a :func:`fit_temperature` bound.

    There the search stopped at the wall, not at the NLL minimum: typically a model near chance
    (its NLL keeps falling as T grows toward a uniform answer) or bounds set too tight.

    Example:
        >>> at_search_bound(19.9, (0.05, 20.0)), at_search_bound(1.4, (0.05, 20.0))
        (True, False)
    """
    lo, hi = bounds
    return not lo * 1.01 < temperature < hi * 0.99


def calibrate(
    logits: np.ndarray,
    y_true: np.ndarray,
    labels: Sequence[str],
    *,
    global_threshold: float = 0.6,
    margin: float = 0.1,
    target_precision: float = 0.9,
    target_precision_per_intent: dict[str, float] | None = None,
    min_support: int = 20,
    max_threshold: float = 0.95,
    bounds: tuple[float, float] = (0.05, 20.0),
    n_bins: int = 15,
    fitted_on: str = "",
) -> Calibration:
    """Fit T on validation logits, then choose per-intent thresholds on calibrated probabilities.

    Args:
        logits: (N, C) raw validation logits.
        y_true: (N,) true indices.
        labels: C names.
    """
    temperature = fit_temperature(logits, y_true, bounds)
    probs = softmax(logits, temperature)
    targets = {lb: float(target_precision) for lb in labels} | dict(
        target_precision_per_intent or {}
    )
    chosen, unreached = choose_thresholds(
        probs, y_true, labels, targets, min_support=min_support, max_threshold=max_threshold
    )
    return Calibration(
        temperature=temperature,
        global_threshold=global_threshold,
        margin=margin,
        thresholds={lb: max(global_threshold, chosen.get(lb, 0.0)) for lb in labels},
        labels=list(labels),
        fitted_on=fitted_on,
        n=len(y_true),
        nll_before=nll(logits, y_true, 1.0),
        nll_after=nll(logits, y_true, temperature),
        ece_before=expected_calibration_error(softmax(logits), y_true, n_bins),
        ece_after=expected_calibration_error(probs, y_true, n_bins),
        target_precision=targets,
        chosen_thresholds=chosen,
        unreached=unreached,
    )


def write_checkpoint_temperature(ckpt_path: Path, temperature: float) -> None:
    """Store T in the checkpoint's ``temperature`` buffer, atomically (temp file + os.replace).

    The model divides its logits by this buffer in ``predict_proba``, so a model loaded from
    the checkpoint is calibrated without calibration.json.
    """
    ckpt_path = Path(ckpt_path)
    ckpt = load_checkpoint(ckpt_path)
    state = ckpt.get("state_dict", ckpt)
    keys = [k for k in state if k == "temperature" or k.endswith(".temperature")]
    if not keys:
        raise UserError(f"{ckpt_path}: no 'temperature' buffer in the state dict; cannot store T")
    for k in keys:
        state[k] = torch.tensor(float(temperature), dtype=state[k].dtype)
    with replacing(ckpt_path) as tmp:
        torch.save(ckpt, tmp)
