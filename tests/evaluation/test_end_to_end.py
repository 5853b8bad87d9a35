"""End to end on a real (tiny, random) trained run: post_train, evaluate, registry, gate.

One smoke training run (``experiment=smoke`` shrunk by ``tests/conftest.py``) is shared by
the module; every command runs in-process through ``mangaassist.cli.main`` for its exit code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mangaassist.cli import main
from mangaassist.evaluation import post_train
from mangaassist.evaluation.after_training import GOLDEN
from mangaassist.training.run_dir import load_run
from mangaassist.training.train import train
from tests.conftest import TINY, compose_cfg, write_toy_jsonl

PERMISSIVE = """\
latency_p95_ms: 1000.0
golden_floors: {acc: 0.0, macro_f1: 0.0, rare_recall: 0.0}
significance: {n_boot: 200}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished, post-trained smoke run directory."""
    root = tmp_path_factory.mktemp("e2e")
    toy = write_toy_jsonl(root / "toy.jsonl", n_per_class=12)
    # A slice of the golden set keeps the module fast on 2 shared cores.
    golden = root / "golden.jsonl"
    golden.write_text("".join(GOLDEN.read_text(encoding="utf-8").splitlines(True)[:80]))
    (root / "eval.yaml").write_text(f"golden_path: {golden}\nreport: {{n_boot: 200}}\n")
    overrides = [*TINY, "data=files", f"data.train={toy}", f"evaluation.golden_path={golden}"]
    cfg = compose_cfg(overrides, root / "run")
    train(cfg)
    summary = post_train(root / "run", cfg)
    (root / "summary.json").write_text(json.dumps(summary))
    return root / "run"


def test_one_meaning_per_test_key(trained):
    """``test/...`` is the fp32 evaluation as served; Lightning's own pass is named apart."""
    from mangaassist.comparison.runs import load_run as load_record

    metrics = json.loads((trained / "metrics.json").read_text())
    summary = json.loads((trained / "eval" / "summary.json").read_text())
    served = json.loads((trained / "eval" / "test" / "metrics.json").read_text())
    assert "test_lightning/acc" in metrics and "test/acc" not in metrics
    assert summary["test/acc"] == pytest.approx(served["acc"])
    # What compare, ablation and model selection read: the served figure under test/acc.
    record = load_record(trained)
    assert record.metric("test/acc") == pytest.approx(served["acc"])
    assert record.metric("test_lightning/acc") == pytest.approx(metrics["test_lightning/acc"])


def test_post_train_calibrates_and_reports(trained):
    summary = json.loads((trained.parent / "summary.json").read_text())
    for key in (
        "test/acc",
        "test/macro_f1",
        "test/ece_before",
        "test/ece_after",
        "golden/acc",
        "golden/macro_f1",
        "latency/p95_ms",
        "calibration/temperature",
    ):
        assert key in summary, key
    cal = json.loads((trained / "calibration.json").read_text())
    assert cal["fitted_on"] == "data/val.jsonl" and set(cal["thresholds"]) == set(cal["labels"])
    for name in ("test", "golden"):
        assert (trained / "eval" / name / "report.html").stat().st_size > 10_000
        m = json.loads((trained / "eval" / name / "metrics.json").read_text())
        assert m["calibration"]["temperature"] == pytest.approx(cal["temperature"])
    golden = json.loads((trained / "eval" / "golden" / "metrics.json").read_text())
    assert golden["n"] == 80 and golden["per_tag"]  # the golden set is tagged
    # Script and length slices: the golden set's romaji tags decide its romaji slice.
    assert golden["slices"]["romaji_from"] == "tags"
    assert sum(r["n"] for r in golden["slices"]["script"]) == 80
    # The temperature travels with the checkpoint: a reloaded model is calibrated.
    run = load_run(trained)
    assert float(run.model.temperature) == pytest.approx(cal["temperature"], rel=1e-5)
    enc = run.tokenizer(["where is my order"], return_tensors="pt")
    with torch.no_grad():
        logits = run.model(enc["input_ids"], enc["attention_mask"])
        proba = run.model.predict_proba(enc["input_ids"], enc["attention_mask"])
    assert torch.allclose(proba, (logits / cal["temperature"]).softmax(-1))


def test_evaluate_command(trained, tmp_path, capsys):
    toy = trained.parent / "toy.jsonl"
    assert (
        main(
            ["evaluate", "--model", str(trained), "--data", str(toy), "--out", str(tmp_path / "ev")]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "[EVAL] set=toy n=120" in out and "p95_ms=" in out
    assert "[EVAL_SLICES] set=toy latin=" in out and "romaji_from=detector" in out
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["n"] == 120 and m["latency"]["n"] == 120 and m["latency"]["p95_ms"] > 0
    assert (tmp_path / "ev" / "report.html").is_file()


def test_evaluate_bad_inputs_exit_2_with_a_named_problem(trained, tmp_path, capsys):
    toy = trained.parent / "toy.jsonl"
    out = str(tmp_path / "ev")
    incomplete = tmp_path / "incomplete"
    (incomplete / "tokenizer").mkdir(parents=True)
    (incomplete / "config.yaml").write_text("model: {}\n")
    assert main(["evaluate", "--model", str(incomplete), "--data", str(toy), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "missing ['labels.json', 'backbone/config.json', 'checkpoints/best.ckpt']" in err

    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"text": "hi", "label": "chitchat"}\n{"text": "x", "label": "weather"}\n')
    assert main(["evaluate", "--model", str(trained), "--data", str(unknown), "--out", out]) == 2
    assert "labels the model does not know: {'weather': 1}" in capsys.readouterr().err

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["evaluate", "--model", str(trained), "--data", str(empty), "--out", out]) == 2
    assert "the file is empty" in capsys.readouterr().err
    assert not Path(out).exists()  # nothing written for a rejected input


@pytest.fixture
def gate_env(trained, tmp_path, monkeypatch) -> tuple[Path, Path, list[str]]:
    """A registry under tmp_path, permissive gates, and the tiny run's small eval settings."""
    root = tmp_path / "reg"
    monkeypatch.setenv("MANGAASSIST_REGISTRY", str(root))
    gates = tmp_path / "gates.yaml"
    gates.write_text(PERMISSIVE)
    return root, gates, ["--eval-config", str(trained.parent / "eval.yaml")]


def test_registry_and_gate_commands(trained, gate_env, capsys):
    root, gates, small = gate_env

    # No champion: only the absolute floors apply (permissive here) -> promote=yes, exit 0.
    assert main(["gate", str(trained), "--gates", str(gates), *small]) == 0
    out = capsys.readouterr().out
    assert "[GATE] champion=none" in out and "[DECISION] promote=yes" in out

    # The shipped gates: a random tiny model misses the golden floors -> promote=no, exit 1.
    assert main(["gate", str(trained), *small]) == 1
    out = capsys.readouterr().out
    assert "[GATE] name=golden_acc status=fail" in out and "[DECISION] promote=no" in out

    assert main(["registry", "register", str(trained)]) == 0
    assert (root / "versions" / "v1" / "MODEL_CARD.md").is_file()
    assert main(["registry", "promote", "v1"]) == 0
    assert main(["registry", "promote", "v9"]) == 2
    assert main(["registry", "rollback"]) == 2
    assert main(["registry", "list"]) == 0
    assert "* v1" in capsys.readouterr().out

    # Against a champion that is the same model: every paired test ties -> no significant
    # gain -> not promoted. A registry version works as the candidate too.
    assert main(["gate", "v1", "--gates", str(gates), *small]) == 1
    out = capsys.readouterr().out
    assert "-> tie" in out and "no significant gain over v1" in out
    assert "[PATH] floors=pass -> champion=v1 -> regressions=none" in out


def test_gate_promote_flag_acts_only_on_a_pass(trained, gate_env, capsys):
    root, gates, small = gate_env

    # Rejected (shipped golden floors): nothing registered, no champion.
    assert main(["gate", str(trained), "--promote", *small]) == 1
    assert not (root / "versions" / "v1").exists()
    # Passed: the run is registered as v1 and becomes the champion in one step.
    assert main(["gate", str(trained), "--promote", "--gates", str(gates), *small]) == 0
    out = capsys.readouterr().out
    assert "event=register version=v1" in out and "event=promote version=v1 from=none" in out
    assert (root / "versions" / "v1" / "MODEL_CARD.md").is_file()
    assert main(["registry", "list"]) == 0
    assert "* v1" in capsys.readouterr().out


def test_console_entry_point_exit_code(tmp_path):
    toy = write_toy_jsonl(tmp_path / "toy.jsonl", n_per_class=1)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mangaassist.cli",
            "evaluate",
            "--model",
            str(tmp_path / "no"),
            "--data",
            str(toy),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 2
    assert "no such model directory" in proc.stderr
