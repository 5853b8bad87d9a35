"""Secondary intents served: a tiny run with the head -> bundle -> predictor, HTTP, evaluate.

The run is trained once per module with ``secondary.weight=0.5`` on multi-ask messages built
from the test phrasings (tests/conftest.py), never from the golden set. The messages sent to
the bundle below are written for this test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest

from mangaassist.cli import main
from mangaassist.data.schema import read_examples
from mangaassist.errors import UserError
from mangaassist.evaluation.evaluate import evaluate_run
from mangaassist.evaluation.secondary import SecondaryPolicy, fit_policy, predict_matrix
from mangaassist.export.bundle import export_run
from mangaassist.inference import Predictor, SecondaryRule, open_bundle
from mangaassist.inference.bundle import MANIFEST, BundleError
from mangaassist.inference.policy import sigmoid
from mangaassist.serve.predlog import read_prediction_logs
from mangaassist.training.run_dir import load_run
from mangaassist.training.train import train
from tests.conftest import TINY, compose_cfg, free_port
from tests.training.test_secondary_run import write_multi_ask_jsonl

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [
    "thanks so much and btw my parcel still hasnt shown up",
    "hello! is the deluxe berserk volume printed in colour",
    "refund the duplicate set and also any coupon for next time",
    "yo",
    "need a person now, the card got charged twice and nothing shipped",
    "what should i read after frieren and are there discounts on it",
]


def _gap_threshold(probs: np.ndarray) -> float:
    """A threshold in the widest gap among the middle half of ``probs``: about half the
    (message, intent) pairs pass, and none lies within float noise of it."""
    p = np.sort(probs.ravel())
    lo, hi = len(p) // 4, 3 * len(p) // 4
    k = lo + int(np.argmax(np.diff(p[lo:hi])))
    return float((p[k] + p[k + 1]) / 2)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("secondary")
    data = write_multi_ask_jsonl(root / "multi.jsonl")
    train(
        compose_cfg(
            [*TINY, "data=files", f"data.train={data}", "secondary.weight=0.5"], root / "run"
        )
    )
    return root / "run"


@pytest.fixture(scope="module")
def threshold(run_dir) -> float:
    _, z2 = load_run(run_dir).predict_heads(MESSAGES)
    return _gap_threshold(sigmoid(z2))


@pytest.fixture(scope="module")
def kept_run(run_dir, threshold, tmp_path_factory) -> Path:
    """The run as post-train leaves it: its secondary.json holds the threshold."""
    run = tmp_path_factory.mktemp("kept") / "run"
    shutil.copytree(run_dir, run)
    SecondaryPolicy(threshold, True, chosen_on="data/val.jsonl").save(run / "secondary.json")
    return run


@pytest.fixture(scope="module")
def bundle_dir(kept_run) -> Path:
    return export_run(kept_run, kept_run / "export")


def test_the_rule_ranks_and_masks_by_hand():
    # sigmoid(0) = 0.5, sigmoid(ln 3) = 0.75, sigmoid(-ln 3) = 0.25, sigmoid(ln 9) = 0.9
    z = np.array([[0.0, np.log(3), -np.log(3), np.log(9)]])
    labels = ["a", "b", "c", "d"]

    def named(rule, primary):
        return [
            (s["intent"], round(s["probability"], 6)) for s in rule.intents(z, [primary], labels)[0]
        ]

    assert named(SecondaryRule(0.5), 3) == [("b", 0.75), ("a", 0.5)]  # d is the primary
    assert named(SecondaryRule(0.5, mask_primary=False), 3) == [("d", 0.9), ("b", 0.75), ("a", 0.5)]
    assert named(SecondaryRule(0.76), 1) == [("d", 0.9)]
    assert named(SecondaryRule(0.95), 0) == []
    # The same sets as the evaluation's rule (mangaassist.evaluation.secondary).
    for t in (0.2, 0.5, 0.8):
        np.testing.assert_array_equal(
            SecondaryRule(t).mask(z, [3]), predict_matrix(sigmoid(z), t, np.array([3]))
        )
    for bad in ({"threshold": 1.0, "mask_primary": True}, {"threshold": 0.4, "mask_primary": 1},
                [0.4], {"threshold": 0.4, "output": "other"}):  # fmt: skip
        with pytest.raises(UserError, match=r"m\.json: secondary"):
            SecondaryRule.from_manifest(bad, "m.json")


def test_the_bundle_has_the_second_output_and_records_the_policy(bundle_dir, threshold):
    m = json.loads((bundle_dir / MANIFEST).read_text())
    s = m["secondary"]
    assert s["output"] == "secondary_logits" and s["threshold"] == threshold
    assert s["mask_primary"] is True and s["source"] == "secondary.json"
    assert m["parity"]["max_abs_secondary_logit_diff"] < 1e-3 and m["output"] == "logits"
    graph = onnx.load(str(bundle_dir / "model.onnx")).graph
    assert [o.name for o in graph.output] == ["logits", "secondary_logits"]
    assert graph.output[1].type.tensor_type.shape.dim[0].dim_param == "batch"
    readme = (bundle_dir / "README.md").read_text()
    assert "## Secondary intents" in readme and f"q >= {threshold:g}" in readme
    assert open_bundle(bundle_dir).secondary == SecondaryRule(threshold, True)


def test_bundle_secondary_probabilities_match_pytorch(run_dir, bundle_dir, threshold):
    run = load_run(run_dir)
    z, z2 = run.predict_heads(MESSAGES)
    predictor = Predictor.from_bundle(open_bundle(bundle_dir))
    got_z, got_z2 = predictor.heads(MESSAGES)
    np.testing.assert_allclose(sigmoid(got_z2), sigmoid(z2), atol=1e-4)
    np.testing.assert_allclose(got_z, z, atol=1e-4)

    # Answers: what the run's own policy predicts from PyTorch's logits, ranked, primary out.
    want = SecondaryPolicy(threshold).predict(z2, z.argmax(1))  # (N, C) bool
    assert 0 < want.sum() < want.size - len(MESSAGES)  # some pass, some do not
    for answer, row, probs in zip(predictor.classify(MESSAGES), want, sigmoid(z2), strict=True):
        names = [s["intent"] for s in answer["secondary_intents"]]
        assert set(names) == {run.labels[c] for c in np.flatnonzero(row)}
        assert answer["intent"] not in names
        p = [s["probability"] for s in answer["secondary_intents"]]
        assert p == sorted(p, reverse=True) and min(p, default=1.0) >= threshold
        np.testing.assert_allclose(p, [probs[run.labels.index(n)] for n in names], atol=1e-4)


def test_without_secondary_json_the_threshold_is_chosen_on_val_and_int8_is_checked(
    run_dir, tmp_path
):
    run = load_run(run_dir)
    want = fit_policy(run, run_dir / "data" / "val.jsonl", run.config.get("secondary"))
    assert not (run_dir / "secondary.json").exists()
    out = export_run(run_dir, tmp_path / "b", quantize="int8")
    assert not (run_dir / "secondary.json").exists()  # the run directory is left as it was
    m = json.loads((out / MANIFEST).read_text())
    assert m["secondary"]["threshold"] == want.threshold
    assert m["secondary"]["source"].startswith("chosen at export")
    q = m["int8"]
    assert 0 <= q["secondary_agreement"] <= 1 and q["max_abs_secondary_prob_diff"] >= 0
    assert q["accepted"] == (
        q["agreement"] >= 0.99
        and q["macro_f1_fp32"] - q["macro_f1_int8"] <= 0.5
        and q["secondary_agreement"] >= 0.99
    )
    if q["accepted"]:  # the int8 graph against PyTorch, both outputs, and served with the head
        assert set(q["vs_torch"]) == {
            "max_abs_logit_diff",
            "max_abs_secondary_logit_diff",
            "messages",
        }
        int8 = Predictor.from_bundle(open_bundle(out), "int8")
        assert "secondary_intents" in int8.classify(MESSAGES[:1])[0]


def _fake_quantizer(secondary_shift: float):
    """A stand-in for quantize_dynamic: writes the fp32 graph, its secondary head's bias moved
    by ``secondary_shift`` (0: lossless). The int8 check itself runs unchanged."""

    def fake(src, dst, **_):
        model = onnx.load(str(src))
        (bias,) = [t for t in model.graph.initializer if "secondary_head.bias" in t.name]
        values = onnx.numpy_helper.to_array(bias).copy() + secondary_shift
        bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
        onnx.save(model, str(dst))

    return fake


def test_int8_keeps_the_head_only_if_it_serves_the_same_secondary_sets(
    kept_run, tmp_path, monkeypatch, capsys
):
    import onnxruntime.quantization as quantization

    monkeypatch.setattr(quantization, "quantize_dynamic", _fake_quantizer(0.0))
    out = tmp_path / "same"
    assert main(["export", str(kept_run), "--out", str(out), "--quantize", "int8"]) == 0
    lines = capsys.readouterr().out
    assert "int8=accepted top1_agreement=100.00%" in lines
    assert "secondary_agreement=100.00%" in lines and "[EXPORT] secondary_output=" in lines
    q = json.loads((out / MANIFEST).read_text())["int8"]
    assert q["accepted"] and q["secondary_agreement"] == 1.0
    assert q["vs_torch"]["max_abs_secondary_logit_diff"] < 1e-3  # the lossless stand-in
    int8 = Predictor.from_bundle(open_bundle(out))
    fp32 = Predictor.from_bundle(open_bundle(out), "fp32")
    assert int8.precision == "int8" and int8.secondary == fp32.secondary
    assert int8.classify(MESSAGES) == fp32.classify(MESSAGES)

    # Top-1 unchanged, every secondary probability pushed to ~0: refused, not written.
    monkeypatch.setattr(quantization, "quantize_dynamic", _fake_quantizer(-50.0))
    out = tmp_path / "drifted"
    export_run(kept_run, out, quantize="int8")
    q = json.loads((out / MANIFEST).read_text())["int8"]
    assert q["agreement"] == 1.0 and q["secondary_agreement"] < 0.99 and not q["accepted"]
    assert open_bundle(out).precisions() == ["fp32"]


def test_an_old_bundle_without_the_head_answers_as_before(tiny_bundle, tmp_path):
    m = json.loads((tiny_bundle / MANIFEST).read_text())
    assert "secondary" not in m and "max_abs_secondary_logit_diff" not in m["parity"]
    assert "Secondary intents" not in (tiny_bundle / "README.md").read_text()
    bundle = open_bundle(tiny_bundle)
    assert bundle.secondary is None
    predictor = Predictor.from_bundle(bundle)
    assert predictor.heads(MESSAGES)[1] is None
    keys = {"intent", "confidence", "top_k", "fallback", "fallback_reason", "action", "route"}
    assert all(set(a) == keys | {"tokens"} for a in predictor.classify(MESSAGES))

    # A manifest that names the head but a graph without its output is refused at load.
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    m["secondary"] = {"threshold": 0.5, "mask_primary": True, "output": "secondary_logits"}
    (copy / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"secondary output 'secondary_logits' .*\['logits'\]"):
        Predictor.from_bundle(open_bundle(copy))
    m["secondary"]["threshold"] = 2
    (copy / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"manifest\.json: secondary must hold a threshold"):
        open_bundle(copy)


def _serve(bundle: Path, logs: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "mangaassist.cli", "serve", str(bundle), f"port={port}"]
    cmd += [f"log_dir={logs}", "log_privacy=text", "max_wait_ms=2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode()
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    raise AssertionError("server not ready in time")


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.stdout.read().decode()


def test_the_served_answer_and_log_carry_the_secondary_intents(bundle_dir, tmp_path):
    offline = Predictor.from_bundle(open_bundle(bundle_dir)).classify(MESSAGES)
    proc, url = _serve(bundle_dir, tmp_path / "logs")
    try:
        one = httpx.post(f"{url}/v1/classify", json={"text": MESSAGES[0]}, timeout=10).json()
        many = httpx.post(f"{url}/v1/classify", json={"texts": MESSAGES}, timeout=10).json()
        schema = httpx.get(f"{url}/openapi.json", timeout=10).json()["components"]["schemas"]
    finally:
        output = _stop(proc)
    assert proc.returncode == 0, output
    for got, want in zip([one, *many["results"]], [offline[0], *offline], strict=True):
        assert got["intent"] == want["intent"]
        assert [s["intent"] for s in got["secondary_intents"]] == [
            s["intent"] for s in want["secondary_intents"]
        ]
        np.testing.assert_allclose(
            [s["probability"] for s in got["secondary_intents"]],
            [s["probability"] for s in want["secondary_intents"]],
            atol=1e-5,
        )
    assert any(r["secondary_intents"] for r in many["results"])
    # The schema: an optional list of {intent, probability} (old clients see nothing new).
    answer = schema["Answer"]
    assert "secondary_intents" in answer["properties"]
    assert "secondary_intents" not in answer["required"]
    assert set(schema["SecondaryIntent"]["properties"]) == {"intent", "probability"}

    log = read_prediction_logs(tmp_path / "logs").records
    assert len(log) == 1 + len(MESSAGES)
    for rec in log:
        want = offline[MESSAGES.index(rec["text"])]["secondary_intents"]
        assert [s["intent"] for s in rec["secondary_intents"]] == [s["intent"] for s in want]


def test_an_old_bundle_is_served_without_the_key(tiny_bundle, tmp_path):
    proc, url = _serve(tiny_bundle, tmp_path / "logs")
    try:
        one = httpx.post(f"{url}/v1/classify", json={"text": MESSAGES[0]}, timeout=10).json()
    finally:
        output = _stop(proc)
    assert proc.returncode == 0, output
    assert "secondary_intents" not in one and one["intent"]
    (rec,) = read_prediction_logs(tmp_path / "logs").records
    assert "secondary_intents" not in rec and rec["intent"] == one["intent"]


def test_predict_prints_the_secondary_intents(bundle_dir, capsys):
    assert main(["predict", "--json", str(bundle_dir), MESSAGES[0]]) == 0
    row = json.loads(capsys.readouterr().out)
    want = Predictor.from_bundle(open_bundle(bundle_dir)).classify(MESSAGES[:1])[0]
    assert [s["intent"] for s in row["secondary_intents"]] == [
        s["intent"] for s in want["secondary_intents"]
    ]
    assert main(["predict", str(bundle_dir), MESSAGES[2]]) == 0
    assert "\n  secondary: " in capsys.readouterr().out


def test_evaluate_on_the_bundle_writes_the_run_evaluations_secondary_figures(
    run_dir, bundle_dir, threshold, tmp_path, capsys
):
    data = run_dir / "data" / "val.jsonl"
    out = tmp_path / "ev"
    args = ["evaluate", "--model", str(bundle_dir), "--data", str(data), "--out", str(out)]
    assert main([*args, "--no-latency"]) == 0
    assert "[EVAL_SECONDARY] set=val precision=" in capsys.readouterr().out
    got = json.loads((out / "metrics.json").read_text())["secondary"]
    policy = SecondaryPolicy(threshold, True, chosen_on="data/val.jsonl")
    examples = read_examples(data)
    ref = evaluate_run(load_run(run_dir), examples, time_it=False, secondary=policy)
    want = ref.metrics["secondary"]
    assert got["n_multi"] > 0 and got["threshold"] == threshold
    assert got["chosen_on"] == "data/val.jsonl"
    for key in ("n", "n_multi", "true_pairs", "predicted_pairs", "correct_pairs"):
        assert got[key] == want[key], key
    for key in ("precision", "recall", "exact_match", "f1_all", "false_single_rate"):
        assert got[key] == pytest.approx(want[key]), key
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["secondary_pred"] for r in rows] == ref.secondary


def test_the_canary_records_and_checks_the_secondary_intents(bundle_dir, tmp_path):
    from mangaassist.inference.canary import CANARY_FILE, check_canary

    rows = [json.loads(x) for x in (bundle_dir / CANARY_FILE).read_text().splitlines()]
    assert rows and all("secondary_intents" in r["fp32"] for r in rows)
    predictor = Predictor.from_bundle(open_bundle(bundle_dir))
    assert check_canary(bundle_dir, predictor) == len(rows)
    # A head that answers other secondary intents than recorded is refused, its answer named
    # (the record is edited here: open_bundle's checksums would refuse an edited bundle first).
    rows[0]["fp32"]["secondary_intents"] = [{"intent": "escalation", "probability": 0.99}]
    (tmp_path / CANARY_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=r"1 of \d+ canary answers differ.*escalation 0\.99000"):
        check_canary(tmp_path, predictor)
