"""Temperature scaling and calibration error, and the ``calibration.json`` that carries them.

Temperature scaling (Guo et al. 2017) divides the logits by one scalar T > 0 fitted on the
validation split by minimising negative log-likelihood; it changes confidences, never the
top-1 prediction. ECE is the L1, top-label expected calibration error over 15 equal-width
bins, computed by torchmetrics.

``calibration.json`` (next to the run's checkpoint, also copied into the registry and the
export bundle)::

    {"version": 1, "temperature": 1.42, "global_threshold": 0.6, "margin": 0.1,
     "thresholds": {label: effective threshold, ...}, "labels": [...],
     "fitted_on": "data/val.jsonl", "n": 800, "nll_before": .., "nll_after": ..,
     "ece_before": .., "ece_after": .., "target_precision": {..}, "unreached": [..]}

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(4000, 5)) * 3
    >>> y = np.array([rng.choice(5, p=p) for p in softmax(z, 2.0)])
    >>> 1.8 < fit_temperature(z, y) < 2.2  # labels drawn at T=2: the logits are too sharp
    True
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torchmetrics.functional.classification import multiclass_calibration_error

from mangaassist.errors import UserError
from mangaassist.evaluation.fallback import FallbackPolicy, choose_thresholds

CALIBRATION_FILE = "calibration.json"
SCHEMA_VERSION = 1


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64; (N, C) -> (N, C)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)  # exp of <= 0 cannot overflow
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


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


@dataclass
class Calibration:
    """What calibration.json holds: the temperature, the fallback policy and the fit's effect."""

    temperature: float = 1.0
    global_threshold: float = 0.6
    margin: float = 0.1
    thresholds: dict[str, float] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    fitted_on: str = ""
    n: int = 0
    nll_before: float | None = None
    nll_after: float | None = None
    ece_before: float | None = None
    ece_after: float | None = None
    target_precision: dict[str, float] = field(default_factory=dict)
    chosen_thresholds: dict[str, float] = field(default_factory=dict)
    unreached: list[str] = field(default_factory=list)

    @property
    def policy(self) -> FallbackPolicy:
        """The fallback rule these settings define."""
        return FallbackPolicy(self.global_threshold, self.margin, dict(self.thresholds))

    def save(self, path: Path) -> None:
        """Write JSON atomically (temp file + os.replace): a crash leaves the old file."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"version": SCHEMA_VERSION, **asdict(self)}, indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """Read calibration.json; a malformed file is a UserError naming it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            data.pop("version", None)
            cal = cls(**data)
        except (OSError, ValueError, TypeError) as err:
            raise UserError(f"{path}: not a valid calibration file ({err})") from err
        if not cal.temperature > 0:
            raise UserError(f"{path}: temperature must be > 0, got {cal.temperature}")
        return cal


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
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    state = ckpt.get("state_dict", ckpt)
    keys = [k for k in state if k == "temperature" or k.endswith(".temperature")]
    if not keys:
        raise UserError(f"{ckpt_path}: no 'temperature' buffer in the state dict; cannot store T")
    for k in keys:
        state[k] = torch.tensor(float(temperature), dtype=state[k].dtype)
    tmp = ckpt_path.with_name(f".{ckpt_path.name}.tmp-{os.getpid()}")
    torch.save(ckpt, tmp)
    os.replace(tmp, ckpt_path)
