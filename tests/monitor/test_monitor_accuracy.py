"""Live accuracy: Wilson intervals, the label-free estimate, the labelled sample's join."""

import json

import numpy as np
import pytest

from mangaassist.errors import UserError
from mangaassist.monitor.accuracy import read_labels, wilson
from mangaassist.monitor.monitor import run_monitor

LABELS = ["faq", "order_tracking", "escalation"]
COUNTS = {"faq": 600, "order_tracking": 370, "escalation": 30}  # escalation: 3% -> rare


def reference(folder):
    folder.mkdir(parents=True)
    (folder / "labels.json").write_text(json.dumps(LABELS))
    (folder / "class_counts.json").write_text(json.dumps(COUNTS))
    return folder


def test_wilson_interval_by_hand():
    # k = 9, n = 10, z = 1.96: centre = (0.9 + 1.96^2 / 20) / (1 + 1.96^2 / 10)
    # = (0.9 + 0.19208) / 1.38416 = 0.78898; half = 1.96 sqrt(0.09 / 10 + 3.8416 / 400)
    # / 1.38416 = 1.96 x 0.136440 / 1.38416 = 0.19320 -> [0.5958, 0.9821].
    w = wilson(9, 10)
    assert w["acc"] == 0.9 and (w["lo"], w["hi"]) == pytest.approx((0.5958, 0.9821), abs=2e-4)
    assert wilson(0, 10)["lo"] == 0.0 and wilson(10, 10)["hi"] == 1.0
    assert wilson(0, 0)["acc"] is None


def test_label_free_estimate_tracks_accuracy_of_a_calibrated_model(tmp_path):
    # A calibrated model: each message's top-1 is right with probability = its confidence.
    rng = np.random.default_rng(7)
    n = 4000
    conf = rng.uniform(0.35, 1.0, n)
    truth = rng.choice(3, n, p=[0.5, 0.35, 0.15])
    right = rng.random(n) < conf
    pred = np.where(right, truth, (truth + rng.integers(1, 3, n)) % 3)
    logs, labels = tmp_path / "predictions-20261207.jsonl", tmp_path / "labels.jsonl"
    with logs.open("w") as f, labels.open("w") as g:
        for i in range(n):
            ts = f"2026-12-07T{i * 24 // n:02d}:{i % 60:02d}:00+00:00"
            f.write(
                json.dumps(
                    {
                        "ts": ts,
                        "request_id": f"q{i}",
                        "intent": LABELS[pred[i]],
                        "confidence": conf[i],
                        "latency_ms": 5,
                        "tokens": 9,
                    }
                )
                + "\n"
            )
            g.write(json.dumps({"request_id": f"q{i}", "label": LABELS[truth[i]]}) + "\n")
    report = run_monitor(logs, reference(tmp_path / "ref"), labels=labels)
    (day,) = [w for w in report["windows"] if w["kind"] == "daily"]
    realised = right.mean()
    # E[est_acc] = E[accuracy]; both average 4000 draws: within ~2 points (SD ~0.6 point).
    assert day["est_acc"] == pytest.approx(realised, abs=0.02)
    # The join is exact: every labelled message is counted once.
    k = int(right.sum())
    assert (day["sampled_n"], day["sampled_acc"]) == (n, pytest.approx(k / n))
    assert (day["sampled_acc_lo"], day["sampled_acc_hi"]) == (
        wilson(k, n)["lo"],
        wilson(k, n)["hi"],
    )
    rare = truth == 2
    assert day["rare_n"] == rare.sum()
    assert day["rare_recall"] == pytest.approx(right[rare].mean())
    assert set(day["per_intent"]) == set(LABELS)
    assert day["per_intent"]["escalation"]["acc"] == pytest.approx(right[rare].mean())
    # Hourly windows hold ~167 labels each: enough (>= min_labels = 30) for sampled_acc too.
    hours = [w for w in report["windows"] if w["kind"] == "hourly"]
    assert len(hours) == 24 and sum(w["sampled_n"] for w in hours) == n
    assert report["labels"] == {"file": str(labels), "labels": n, "matched": n}


def test_few_labels_are_reported_but_not_judged(tmp_path):
    logs = tmp_path / "p.jsonl"
    lines = [
        {
            "ts": "2026-12-07T10:00:00+00:00",
            "request_id": f"a{i}",
            "intent": "faq",
            "confidence": 0.9,
        }
        for i in range(5)
    ]
    logs.write_text("".join(json.dumps(x) + "\n" for x in lines))
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(json.dumps({"request_id": f"a{i}", "label": "faq"}) + "\n" for i in range(5))
    )
    report = run_monitor(logs, reference(tmp_path / "ref"), labels=labels)
    w = report["windows"][0]
    assert (w["sampled_n"], w["sampled_acc"], w["rare_recall"]) == (5, None, None)


def test_labels_are_checked_against_the_reference(tmp_path):
    bad = tmp_path / "labels.jsonl"
    bad.write_text('{"request_id": "a", "label": "faq"}\n{"request_id": "b", "label": "refund"}\n')
    with pytest.raises(UserError, match=r"labels.jsonl:2: unknown label 'refund': not one of"):
        read_labels(bad, LABELS)
    bad.write_text(
        '{"request_id": "a", "label": "faq"}\n{"request_id": "a", "label": "escalation"}\n'
    )
    with pytest.raises(UserError, match=r":2: \(a, 0\) labelled 'faq' above"):
        read_labels(bad, LABELS)
    logs = tmp_path / "p.jsonl"
    logs.write_text(
        json.dumps({"ts": "2026-12-07T10:00:00+00:00", "request_id": "zz", "intent": "faq"}) + "\n"
    )
    other = tmp_path / "other.jsonl"
    other.write_text('{"request_id": "a", "label": "faq"}\n')
    with pytest.raises(UserError, match="none of its 1 labels matches"):
        run_monitor(logs, reference(tmp_path / "ref"), labels=other)
