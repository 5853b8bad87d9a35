"""``mangaassist explain``: the printed numbers are the model's, and they agree with each other."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from mangaassist.cli import main
from mangaassist.inference.policy import Calibration, decide, softmax
from mangaassist.model.losses import class_weights
from mangaassist.training.explain import explain

TEXT = "is this isekai peak or mid?"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["explain", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _table(out: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Labels, logits, p(T=1) and p(T) from the printed table."""
    rows = re.findall(r"^(\w+)\s+(-?\d+\.\d+)\s+(\d\.\d+)\s+(\d\.\d+)$", out, re.M)
    labels = [r[0] for r in rows]
    z, p1, pt = (np.array([float(r[i]) for r in rows]) for i in (1, 2, 3))
    return labels, z, p1, pt


def _value(out: str, name: str) -> float:
    return float(re.search(rf"{re.escape(name)}:?\s+(-?[\d.e+-]+)", out).group(1))


@pytest.fixture
def calibrated_run(tiny_run: Path, tmp_path: Path) -> Path:
    """A copy of the tiny run with a calibration.json (T = 2.5, one raised threshold)."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("export", "wandb", "csv"))
    labels = json.loads((run / "labels.json").read_text())
    thresholds = {lb: 0.6 for lb in labels} | {labels[0]: 0.7}
    Calibration(temperature=2.5, thresholds=thresholds, labels=labels).save(
        run / "calibration.json"
    )
    return run


def test_probabilities_and_decision_follow_from_the_printed_logits(calibrated_run, capsys):
    code, out, _ = _run(capsys, str(calibrated_run), TEXT)
    assert code == 0
    labels, z, p1, pt = _table(out)
    assert sorted(labels) == sorted(json.loads((calibrated_run / "labels.json").read_text()))
    assert "T=2.5000 (calibration.json)" in out
    assert p1.sum() == pytest.approx(1, abs=1e-3) and pt.sum() == pytest.approx(1, abs=1e-3)
    assert softmax(z[None], 1.0)[0] == pytest.approx(p1, abs=2e-4)
    assert softmax(z[None], 2.5)[0] == pytest.approx(pt, abs=2e-4)
    # The WordPiece tokens the model saw, with its special tokens.
    tokens = re.search(r"^tokens \((\d+)\): (.*)$", out, re.M)
    assert tokens.group(2).split()[0] == "[CLS]" and tokens.group(2).split()[-1] == "[SEP]"
    assert "isekai" in tokens.group(2).replace(" ##", "")
    # The decision is the server's rule on the calibrated probabilities.
    cal = Calibration.load(calibrated_run / "calibration.json")
    e = explain(calibrated_run, TEXT)
    want = decide(np.array([e.probs]), e.labels, cal.policy)[0]
    assert e.answer == want
    assert f"prediction: {want['intent']} " in out
    expected = f"route -> {want['route']}" if not want["fallback"] else want["fallback_reason"]
    assert expected in out.split("decision:")[1].splitlines()[0]


def test_uncalibrated_run_says_t_is_one(tiny_run, capsys):
    code, out, _ = _run(capsys, str(tiny_run), TEXT)
    assert code == 0
    assert "T=1.0000 (no calibration.json yet" in out
    _, _, p1, pt = _table(out)
    assert p1 == pytest.approx(pt)


def test_label_gives_ce_focal_loss_alpha_and_gradient_norms(tiny_run, capsys):
    cfg = OmegaConf.load(tiny_run / "config.yaml")
    assert cfg.loss.name == "focal_weighted"  # the production loss: gamma and class weights
    code, out, _ = _run(capsys, str(tiny_run), TEXT, "--label", "recommendation")
    assert code == 0
    labels, _, p1, _ = _table(out)
    p_t = _value(out, "p_t (T=1)")
    assert p_t == pytest.approx(p1[labels.index("recommendation")], abs=1e-4)
    ce = _value(out, "cross_entropy -log p_t")
    assert ce == pytest.approx(-math.log(p_t), rel=1e-5)
    gamma = float(cfg.loss.criterion.gamma)
    assert f"gamma={gamma:g}" in out
    factor = _value(out, "focal_factor (1-p_t)^gamma")
    assert factor == pytest.approx((1 - p_t) ** gamma, rel=1e-5)
    # alpha_t is the inverse-frequency weight training computed from the class counts.
    counts = json.loads((tiny_run / "class_counts.json").read_text())
    run_labels = json.loads((tiny_run / "labels.json").read_text())
    alpha = float(
        class_weights([counts[lb] for lb in run_labels])[run_labels.index("recommendation")]
    )
    assert _value(out, "alpha_t") == pytest.approx(alpha, rel=1e-5)
    loss = _value(out, "loss of this message")
    assert loss == pytest.approx(alpha * factor * ce, rel=1e-4)
    norms = dict(
        re.findall(r"^  (head|top_layer|bottom_layer)\s+layer\d\d \[.*\]: (\S+)$", out, re.M)
    )
    assert set(norms) == {"head", "top_layer", "bottom_layer"}
    assert all(float(v) > 0 for v in norms.values())
    # Named as the optimiser's param groups: the 2-block tiny model's head is layer 3.
    groups = dict(re.findall(r"^  (head|bottom_layer)\s+layer\d\d \[(.*)\]:", out, re.M))
    assert set(groups["head"].split(", ")) == {"layer03_decay", "layer03_no_decay"}
    assert set(groups["bottom_layer"].split(", ")) == {"layer01_decay", "layer01_no_decay"}


def test_unknown_label_is_one_error_line(tiny_run, capsys):
    code, out, err = _run(capsys, str(tiny_run), TEXT, "--label", "recomendation")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: --label 'recomendation'")
    assert "did you mean recommendation?" in err
