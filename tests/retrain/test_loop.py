"""The retraining loop on the tiny model, with the real commands.

simulate drift -> monitor (the retrain alert, priced) -> active-learn -> label from the
simulator's truth -> retrain -> gates -> candidate registered for shadow.

What is real and what is not: the tiny model (2 random layers, 60 toy messages) is near
random, so the monitor's ``retrain_trigger`` fires on the first judged day, drift or not: its
intent mix is far from the training mix (KL) and its sampled accuracy is ~10%. The alert,
its ROI estimate and every later step run on the simulator's real output; what the test
cannot show is that *drift* caused the alert, which the monitoring experiments measure on the
default model. As in tests/test_lifecycle.py, the gates keep their structure but the quality
floors are zero and the significant-gain rule is waived: what is tested is the loop and its
evidence, not the tiny model's quality.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import yaml

from mangaassist.cli import main
from mangaassist.data.normalize import dedup_key
from mangaassist.data.schema import read_examples
from mangaassist.evaluation.after_training import GOLDEN
from mangaassist.monitor.scenarios import SCENARIOS_FILE
from mangaassist.monitor.simulate import simulate
from mangaassist.release.registry import Registry
from mangaassist.serve.predlog import read_prediction_logs

GATES = {
    "require_significant_gain": False,
    "golden_floors": {"acc": 0.0, "macro_f1": 0.0, "rare_recall": 0.0},
    "latency_p95_ms": 1000.0,
    "rare_recall_margin": 1.0,  # the tiny models' rare recall swings with a few messages
    "ece_margin": 1.0,
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_simulate_alert_active_learn_label_retrain_gate(tiny_run, tiny_bundle, tmp_path, capsys):
    reg = Registry(tmp_path / "registry")
    reg.register(tiny_run)
    reg.promote("v1")
    v1 = reg.path("v1")

    # Drift: a new hit title and its slang from day 1 of 2.
    scenarios = yaml.safe_load(SCENARIOS_FILE.read_text())
    scenarios["scenarios"]["new_hit_title"]["start_day"] = 1
    (tmp_path / "scenarios.yaml").write_text(yaml.safe_dump(scenarios))
    sim = tmp_path / "sim"
    info = simulate(sim, "new_hit_title", bundle=tiny_bundle, days=2, rate_per_hour=80,
                    label_share=0.03, scenarios_path=tmp_path / "scenarios.yaml")  # fmt: skip
    assert info["drift_start"] == "2026-03-03T00:00:00+00:00"
    truth = {
        json.loads(line)["request_id"]: json.loads(line)
        for line in (sim / "truth.jsonl").read_text().splitlines()
    }
    logged = read_prediction_logs([sim / "logs"]).records

    # The registry's gate set: held-out drifted traffic, labelled by the simulator.
    drifted = [r for r in logged if truth[r["request_id"]]["drift"]]
    gate = [{"text": r["text"], "label": truth[r["request_id"]]["label"]} for r in drifted[::25]]
    (reg.root / "gate_set.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gate))

    # Monitor: the retrain request names the command and carries its ROI.
    mon = tmp_path / "monitor"
    argv = ["monitor", str(sim / "logs"), "--reference", "champion", "--registry", str(reg.root),
            "--labels", str(sim / "labels.jsonl"), "--out", str(mon)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    (alert,) = [x for x in out.splitlines() if x.startswith("[ALERT] retrain_trigger=true")]
    assert 'action="mangaassist retrain --labels LABELLED.jsonl"' in alert
    assert re.search(r'roi="cost=\$50\.\d\d \(500 labels x \$0\.10 \+ \d+\.\d train min', alert)
    (fired,) = [
        e for e in json.loads((mon / "monitor.json").read_text())["alerts"]
        if e["rule"] == "retrain_trigger"
    ]  # fmt: skip
    roi = fired["roi"]
    assert roi["baseline"] == "target" and roi["live"] == "sampled_acc"  # no eval/ in tiny_run
    assert roi["training_minutes_source"] == "measured (v1/metrics.json)"
    assert roi["points_lost"] == round(100 * (0.90 - fired["signals"]["sampled_acc"]), 2)

    # Active learning picks the messages; the simulator's truth labels them. (No per-intent
    # quota: the near-random tiny model puts most messages in two or three intents.)
    to_label = tmp_path / "to_label.jsonl"
    argv = ["active-learn", str(sim / "logs"), "--bundle", str(tiny_bundle), "--train",
            str(v1 / "data" / "train.jsonl"), "--budget", "40", "--out", str(to_label),
            "--per-intent-quota", "1"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    rows = [json.loads(line) for line in to_label.read_text().splitlines()]
    assert len(rows) == 40
    for r in rows:
        r["label"] = truth[r["request_id"]]["label"]
    # What a real batch also holds: messages of the held-out sets, a training message, a
    # repeat, and one the labeller left blank.
    test = read_examples(v1 / "data" / "test.jsonl")
    golden = read_examples(GOLDEN)
    train = read_examples(v1 / "data" / "train.jsonl")
    extra = [
        *({"text": e.text.upper(), "label": e.label} for e in test[:2]),
        *({"text": e.text, "label": e.label} for e in golden[:2]),
        *({"text": g["text"] + "!", "label": g["label"]} for g in gate[:2]),
        {"text": train[0].text, "label": train[0].label},
        {"text": rows[0]["text"] + " ??", "label": rows[0]["label"]},
        {"text": "not sure what this one is", "label": ""},
    ]
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows + extra))

    # Retrain.
    gates = tmp_path / "gates.yaml"
    gates.write_text(yaml.safe_dump(GATES))
    cand = tmp_path / "candidate"
    argv = ["retrain", "--labels", str(labelled), "--registry", str(reg.root), "--out", str(cand),
            "--gates", str(gates), "--monitor", str(mon)]  # fmt: skip
    rc = main(argv)
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    for step in ("1/5 merge", "2/5 train", "3/5 evaluate", "4/5 gate", "5/5 register"):
        assert f"[RETRAIN] step={step}" in out
    (data_line,) = [x for x in out.splitlines() if x.startswith("[RETRAIN_DATA]")]
    counts = dict(re.findall(r"(\w+)=(\d+)", data_line.split('dropped="')[1].split('"')[0]))
    assert counts["in_test"] == "2" and counts["in_golden"] == "2" and counts["in_train"] == "1"
    assert int(counts["in_gate_set"]) >= 2  # active learning may have picked some too
    assert int(counts["duplicate_in_labels"]) >= 1
    assert "unlabelled=1 " in data_line
    assert "[GATE] overlap=0 " in out and "source=registry" in out
    assert re.search(r"^\[DECISION\] promote=yes ", out, re.M)
    assert re.search(r"^\[RETRAIN_RECOVERED\] set=registry n=\d+ acc=[+-]\d+\.\d\dpp ", out, re.M)
    assert re.search(r"^\[RETRAIN_COST\] labels=49 x \$0\.10 \+ ", out, re.M)
    assert re.search(
        r"^\[RETRAIN_ROI\] estimated_cost=\$50\.\d\d realised_cost=\$4\.\d\d ", out, re.M
    )
    assert "[REGISTRY] event=register version=v2" in out
    assert "[RETRAIN] candidate=v2 status=registered promoted=no" in out

    # Nothing held out went into training; the data version says what did.
    record = json.loads((cand / "retrain" / "data_version.json").read_text())
    trained = {dedup_key(e.text) for e in read_examples(cand / "data" / "train.jsonl")}
    for held_out in (test, golden, read_examples(reg.root / "gate_set.jsonl")):
        assert not trained & {dedup_key(e.text) for e in held_out}
    assert record["data_version"] == f"sha256:{sha256(cand / 'data' / 'train.jsonl')}"
    assert record["parent"]["data_version"] == f"sha256:{sha256(v1 / 'data' / 'train.jsonl')}"
    c = record["counts"]
    assert c["merged_train"] == c["base_train"] + c["added"] == len(trained)
    assert c["added"] + sum(c["dropped"].values()) == c["labelled"] == 48
    assert sha256(cand / "data" / "test.jsonl") == sha256(v1 / "data" / "test.jsonl")
    assert sha256(cand / "data" / "val.jsonl") == sha256(v1 / "data" / "val.jsonl")

    # Registered for shadow, not promoted; the version keeps its data version and report.
    assert reg.versions() == ["v1", "v2"] and reg.champion() == "v1"
    v2 = reg.path("v2")
    assert reg.info("v2")["data_sha256"]["data/train.jsonl"] == record["data_version"][7:]
    assert json.loads((v2 / "retrain" / "data_version.json").read_text()) == record
    report = json.loads((v2 / "retrain" / "report.json").read_text())
    assert report["registered"] == "v2" and report["decision"]["promote"] is True
    assert report["estimate"]["cost"] == roi["cost"] and report["cost"]["labels"] == 49
    assert set(report["recovered"]) == {"acc", "macro_f1", "rare_recall"}
    assert reg.history()[-1]["event"] == "register"
