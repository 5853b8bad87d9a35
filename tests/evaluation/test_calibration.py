"""ECE and temperature scaling against plain numpy references; calibration.json round trip."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from mangaassist.errors import UserError
from mangaassist.evaluation.calibration import (
    Calibration,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability_bins,
    softmax,
    write_checkpoint_temperature,
)


def ece_reference(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Guo et al. (2017): sum over equal-width bins of |acc - conf| weighted by bin share."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (conf >= lo) & (conf < hi) if hi < 1 else (conf >= lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs((pred[inside] == y[inside]).mean() - conf[inside].mean())
    return total


def synthetic(n: int = 6000, c: int = 6, t_star: float = 2.5, seed: int = 0):
    """Logits z and labels drawn from softmax(z / T*): the true temperature is T*."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c)) * 4
    p = softmax(z, t_star)
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)  # one categorical draw per row
    return z, y


@pytest.mark.parametrize("seed", [0, 1])
def test_ece_matches_numpy_reference(seed):
    z, y = synthetic(seed=seed)
    for t in (1.0, 2.5, 6.0):
        p = softmax(z, t)
        assert expected_calibration_error(p, y, 15) == pytest.approx(ece_reference(p, y), abs=1e-6)


def test_ece_is_zero_for_a_perfectly_calibrated_toy():
    # Every prediction at confidence 0.75, three in four right: accuracy equals confidence.
    p = np.tile([0.75, 0.25], (8, 1))
    y = np.array([0, 0, 0, 1] * 2)
    assert expected_calibration_error(p, y) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("t_star", [0.5, 1.0, 2.5, 5.0])
def test_temperature_fit_recovers_the_true_temperature(t_star):
    z, y = synthetic(t_star=t_star, n=8000)
    t = fit_temperature(z, y)
    assert t == pytest.approx(t_star, rel=0.08)
    assert nll(z, y, t) <= nll(z, y, 1.0) + 1e-9
    # Fitting T never changes predictions, and it lowers ECE for miscalibrated logits.
    assert np.array_equal(softmax(z, t).argmax(1), z.argmax(1))
    if t_star != 1.0:
        assert expected_calibration_error(softmax(z, t), y) < expected_calibration_error(
            softmax(z), y
        )


def test_nll_matches_torch_cross_entropy():
    z, y = synthetic(n=500)
    ref = torch.nn.functional.cross_entropy(torch.tensor(z / 1.7), torch.tensor(y)).item()
    assert nll(z, y, 1.7) == pytest.approx(ref, rel=1e-9)


def test_reliability_bins_count_and_average():
    p = np.array([[0.95, 0.05], [0.92, 0.08], [0.55, 0.45], [1.0, 0.0]])
    y = np.array([0, 1, 0, 0])
    rel = reliability_bins(p, y, n_bins=10)
    assert sum(rel["count"]) == 4
    assert rel["count"][9] == 3  # 0.95, 0.92 and 1.0 (the top bin is closed)
    assert rel["accuracy"][9] == pytest.approx(2 / 3)
    assert rel["confidence"][5] == pytest.approx(0.55)
    assert rel["accuracy"][0] is None


def test_calibrate_fits_t_and_thresholds_and_round_trips(tmp_path):
    z, y = synthetic(t_star=3.0, n=4000)
    labels = [f"i{k}" for k in range(6)]
    c = calibrate(z, y, labels, target_precision=0.9, min_support=20, fitted_on="val.jsonl")
    assert c.temperature == pytest.approx(3.0, rel=0.1)
    assert c.ece_after < c.ece_before and c.nll_after < c.nll_before
    assert set(c.thresholds) == set(labels)
    assert all(v >= c.global_threshold for v in c.thresholds.values())
    c.save(tmp_path / "calibration.json")
    again = Calibration.load(tmp_path / "calibration.json")
    assert again == c
    assert not list(tmp_path.glob(".*tmp*"))  # the temp file was swapped in, not left behind


def test_bad_calibration_file_is_a_user_error(tmp_path):
    (tmp_path / "calibration.json").write_text('{"temperature": -1}')
    with pytest.raises(UserError, match="temperature must be > 0"):
        Calibration.load(tmp_path / "calibration.json")
    (tmp_path / "calibration.json").write_text("{nope")
    with pytest.raises(UserError, match="not a valid calibration file"):
        Calibration.load(tmp_path / "calibration.json")


def test_temperature_is_written_into_the_checkpoint(tmp_path):
    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": {"temperature": torch.tensor(1.0), "w": torch.ones(2)}}, path)
    write_checkpoint_temperature(path, 1.75)
    state = torch.load(path, weights_only=True)["state_dict"]
    assert float(state["temperature"]) == pytest.approx(1.75)
    torch.save({"state_dict": {"w": torch.ones(2)}}, path)
    with pytest.raises(UserError, match="no 'temperature' buffer"):
        write_checkpoint_temperature(path, 2.0)
