"""Out-of-scope scoring: the pure figures, the label split, and post_train on a tiny run."""

from __future__ import annotations

import doctest
import json
import re
from pathlib import Path

import numpy as np
import pytest

from mangaassist.data.schema import Example
from mangaassist.errors import UserError
from mangaassist.evaluation import out_of_scope, post_train
from mangaassist.evaluation.artifacts import split_out_of_scope
from mangaassist.evaluation.fallback import FallbackPolicy
from mangaassist.evaluation.out_of_scope import score_out_of_scope
from mangaassist.training.train import train
from tests.conftest import TINY, compose_cfg, write_toy_jsonl


def test_doctest():
    assert doctest.testmod(out_of_scope).failed == 0


def test_scores_use_the_threshold_of_the_predicted_intent():
    # Intent b has its own threshold 0.8: a 0.7 prediction of b is rejected, of a it is not.
    policy = FallbackPolicy(global_threshold=0.5, thresholds={"b": 0.8})
    p_in = np.array([[0.7, 0.3], [0.3, 0.7], [0.9, 0.1], [0.1, 0.9]])
    y_in = np.array([0, 1, 1, 1])  # right, right (rejected), wrong, right
    p_oos = np.array([[0.3, 0.7], [0.7, 0.3], [0.45, 0.55], [0.95, 0.05]])
    m = score_out_of_scope(p_in, y_in, p_oos, ["a", "b"], policy)
    assert m["oos_recall"] == 0.5  # 0.7 of b and 0.55 of b are below 0.8
    assert m["oos_false_accept_rate"] == 0.5
    assert m["in_scope_acc"] == 0.75
    assert m["in_scope_acc_accepted"] == 0.5  # the rejected right answer no longer counts
    assert m["in_scope_reject_rate"] == 0.25
    assert m["n_in_scope"] == 4 and m["n_oos"] == 4
    assert 0 <= m["oos_auroc"] <= 1


def test_split_keeps_only_oos_apart_and_names_other_labels():
    ex = [Example("a", "faq"), Example("b", "oos"), Example("c", "faq")]
    in_scope, oos = split_out_of_scope(ex, ["faq"], "t.jsonl", "m")
    assert [e.text for e in in_scope] == ["a", "c"] and [e.text for e in oos] == ["b"]
    # A model trained with an oos class scores it like any other label.
    in_scope, oos = split_out_of_scope(ex, ["faq", "oos"], "t.jsonl", "m")
    assert len(in_scope) == 3 and not oos
    with pytest.raises(UserError, match=r"t.jsonl: labels the model does not know: \{'weather'"):
        split_out_of_scope([*ex, Example("d", "weather")], ["faq"], "t.jsonl", "m")


OOS_TEXTS = ["what is the capital of peru", "how tall is mount everest", "set an alarm for 7"]


@pytest.fixture(scope="module")
def oos_run(tmp_path_factory) -> Path:
    """A tiny trained run whose saved test file also holds out-of-scope queries."""
    root = tmp_path_factory.mktemp("oos")
    toy = write_toy_jsonl(root / "toy.jsonl", n_per_class=12)
    overrides = [
        *TINY,
        "data=files",
        f"data.train={toy}",
        f"evaluation.golden_path={root / 'no-golden.jsonl'}",
        "evaluation.report.n_boot=100",
        "evaluation.latency.max_messages=20",
        "evaluation.latency.warmup=2",
    ]
    cfg = compose_cfg(overrides, root / "run")
    train(cfg)
    test = root / "run" / "data" / "test.jsonl"
    with test.open("a", encoding="utf-8") as f:
        for i, text in enumerate(OOS_TEXTS * 4):
            f.write(json.dumps({"id": f"oos-{i}", "text": f"{text} {i}", "label": "oos"}) + "\n")
    return root / "run"


def test_post_train_scores_oos_apart(oos_run, capsys):
    summary = post_train(oos_run)
    out = capsys.readouterr().out
    assert "[EVAL] set=test n_in_scope=" in out and "n_oos=12 oos_recall=" in out
    for key in ("test/oos_recall", "test/oos_false_accept_rate", "test/in_scope_acc"):
        assert key in summary, key
    assert summary["test/oos_recall"] + summary["test/oos_false_accept_rate"] == pytest.approx(1)
    assert summary["test/in_scope_acc"] == pytest.approx(summary["test/acc"])
    assert summary["test/in_scope_acc_accepted"] <= summary["test/in_scope_acc"]
    on_disk = json.loads((oos_run / "eval" / "summary.json").read_text())
    assert on_disk["test/oos_recall"] == summary["test/oos_recall"]
    run_metrics = json.loads((oos_run / "metrics.json").read_text())
    assert run_metrics["test/oos_recall"] == summary["test/oos_recall"]
    assert "best/val/macro_f1" in run_metrics  # training's figures are kept
    full = json.loads((oos_run / "eval" / "test" / "metrics.json").read_text())
    assert full["out_of_scope"]["n_oos"] == 12 and "oos" not in full["labels"]
    assert "Out-of-scope queries" in (oos_run / "eval" / "test" / "report.html").read_text()


def test_post_train_still_rejects_other_unknown_labels(oos_run, tmp_path):
    bad = tmp_path / "run"
    bad.mkdir()
    for item in oos_run.iterdir():
        if item.name != "data":
            (bad / item.name).symlink_to(item)
    (bad / "data").mkdir()
    (bad / "data" / "test.jsonl").write_text('{"text": "will it rain", "label": "weather"}\n')
    with pytest.raises(UserError, match=re.escape("does not know: {'weather': 1}")):
        post_train(bad)


def test_evaluate_cli_scores_oos_apart(oos_run, tmp_path, capsys):
    # `mangaassist evaluate` on a CLINC150-style test file: `oos` lines go to the OOS figures.
    from mangaassist.cli import main

    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(oos_run), "--data", str(oos_run / "data" / "test.jsonl")]
    assert main([*args, "--out", str(out), "--no-latency"]) == 0
    assert "n_oos=12 oos_recall=" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["out_of_scope"]["n_oos"] == 12 and "oos" not in metrics["labels"]
