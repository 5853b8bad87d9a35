"""Active learning: the strategies on hand-made rows, dedup, quotas, diversity, the files."""

from __future__ import annotations

import csv
import doctest
import json
from pathlib import Path

import numpy as np
import pytest

from mangaassist.cli import main
from mangaassist.data.normalize import dedup_key
from mangaassist.errors import UserError
from mangaassist.monitor import active_learning
from mangaassist.monitor.active_learning import (
    active_learn,
    parse_quota,
    probs_from_top_k,
    scores,
    select,
    write_batch,
)
from mangaassist.serve.predlog import PredictionLogWriter
from tests.conftest import write_toy_jsonl

LABELS = ["faq", "promotion", "chitchat", "escalation"]
# Each strategy has its own winner: r1 the lowest top-1, r0 the smallest margin, r2 the
# flattest distribution; r3 is confident.
ROWS = np.array(
    [
        [0.40, 0.40, 0.20, 0.00],  # LC 0.60, margin score 1.00, entropy 1.055
        [0.34, 0.33, 0.33, 0.00],  # LC 0.66, margin score 0.99, entropy 1.099
        [0.35, 0.25, 0.20, 0.20],  # LC 0.65, margin score 0.90, entropy 1.358
        [0.97, 0.01, 0.01, 0.01],
    ]
)
TEXTS = ["how do points work", "any sales", "hi there", "i want a human"]


def test_doctests_run():
    assert doctest.testmod(active_learning).failed == 0


@pytest.mark.parametrize(
    ("strategy", "want", "values"),
    [
        ("least_confidence", 1, [0.60, 0.66, 0.65, 0.03]),
        ("margin", 0, [1.00, 0.99, 0.90, 0.04]),
        ("entropy", 2, [1.0549, 1.0985, 1.3578, 0.1677]),
    ],
)
def test_each_strategy_picks_its_row(strategy, want, values):
    np.testing.assert_allclose(scores(ROWS, strategy), values, atol=1e-4)
    picks = select(TEXTS, ROWS, LABELS, 1, strategy=strategy, diversity="none")
    assert [p.index for p in picks] == [want]
    assert picks[0].why.startswith(f"{strategy}=") and picks[0].guess == LABELS[ROWS[want].argmax()]
    everything = select(TEXTS, ROWS, LABELS, 4, strategy=strategy, diversity="none")
    assert everything[-1].index == 3  # the confident row comes last


def test_random_is_seeded():
    a = [p.index for p in select(TEXTS * 5, np.tile(ROWS, (5, 1)), LABELS, 3, strategy="random")]
    b = [p.index for p in select(TEXTS * 5, np.tile(ROWS, (5, 1)), LABELS, 3, strategy="random")]
    assert a == b


def test_dedup_against_train_and_within_the_batch():
    texts = ["Where is my order?", "where is my order", "WHERE IS MY ORDER!!", "refund pls", "hi"]
    probs = np.array([[0.3, 0.3, 0.2, 0.2]] * 3 + [[0.4, 0.3, 0.2, 0.1], [0.5, 0.3, 0.1, 0.1]])
    picks = select(texts, probs, LABELS, 5, strategy="entropy", diversity="none",
                   exclude={dedup_key("Refund PLS!")})  # fmt: skip
    chosen = [texts[p.index] for p in picks]
    assert len(chosen) == 2 and "refund pls" not in chosen  # 3 copies -> 1; 1 in train
    assert chosen[0] == "Where is my order?"


def test_per_intent_quota_caps_every_guess():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1, 1], size=200)
    probs[:150, 0] += 2  # 150 rows guess faq, the other 50 spread over the rest
    probs /= probs.sum(axis=1, keepdims=True)
    texts = [f"message number {i}" for i in range(200)]
    quota = parse_quota("0.3,escalation=0.1", 20)
    assert quota == {**dict.fromkeys(quota, 6), "escalation": 2}
    picks = select(texts, probs, LABELS, 20, strategy="least_confidence", quota=quota)
    mix = {g: sum(p.guess == g for p in picks) for g in LABELS}
    assert mix["faq"] == 6 and mix["escalation"] <= 2 and max(mix.values()) <= 6
    with pytest.raises(UserError, match="unknown intent 'faqs'"):
        parse_quota("faqs=0.2", 20)
    with pytest.raises(UserError, match=r"a share in \(0, 1\]"):
        parse_quota("0", 20)


def test_kmeans_spreads_the_batch_over_confusions():
    # 60 near-copies of one confusion, all a little more uncertain than 60 varied messages.
    copies = [f"is the quillborne requiem vol {i} box in stock" for i in range(60)]
    varied = [f"{w} {i}" for i, w in enumerate(
        ["where is my order", "any sales today", "hi there", "refund my box set",
         "card declined again", "talk to a human", "shipping to canada", "something like naruto",
         "new isekai this week", "points program"] * 6)]  # fmt: skip
    texts = copies + varied
    probs = np.array([[0.26, 0.25, 0.25, 0.24]] * 60 + [[0.40, 0.30, 0.20, 0.10]] * 60)
    plain = select(texts, probs, LABELS, 10, strategy="entropy", diversity="none")
    spread = select(texts, probs, LABELS, 10, strategy="entropy", diversity="kmeans", seed=1)
    assert all(p.index < 60 for p in plain)
    assert sum(p.index < 60 for p in spread) <= 3 and all(p.cluster is not None for p in spread)
    assert len({p.cluster for p in spread}) == 10


def test_probs_from_top_k_spread_the_missing_mass():
    p = probs_from_top_k([{"top_k": [["faq", 0.6], ["chitchat", 0.3]]}], LABELS)
    np.testing.assert_allclose(p, [[0.6, 0.05, 0.3, 0.05]])


def _log(tmp_path: Path, privacy: str, n: int = 60) -> Path:
    with PredictionLogWriter(tmp_path / f"logs-{privacy}", privacy=privacy) as w:
        for i in range(n):
            text = f"where is my order number {i % 40} pls"
            w.write({"request_id": f"r{i}", "item": 0, "model_version": "v1", "intent": "faq",
                     "confidence": 0.5, "top_k": [["faq", 0.5], ["promotion", 0.3]],
                     "text": text, "role": "champion" if i % 10 else "shadow"})  # fmt: skip
    return tmp_path / f"logs-{privacy}"


def test_hashed_logs_are_refused_with_the_fix(tmp_path, capsys):
    logs = _log(tmp_path, "hash")
    with pytest.raises(UserError, match=r"log_privacy=hash.*log_privacy=text"):
        active_learn([logs], tmp_path / "x.jsonl", budget=5)
    assert main(["active-learn", str(logs), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "log_privacy=hash" in capsys.readouterr().err


def test_files_for_the_labeller(tiny_bundle, tmp_path):
    logs = _log(tmp_path, "text")
    train = write_toy_jsonl(tmp_path / "train.jsonl", n_per_class=2)
    known = {"text": "where is my order number 7 PLS", "label": "order_tracking"}
    train.write_text(train.read_text() + json.dumps(known) + "\n")
    out = tmp_path / "batch" / "to_label.jsonl"
    args = ["active-learn", str(logs), "--budget", "12", "--out", str(out), "--bundle"]
    assert main([*args, str(tiny_bundle), "--train", str(train), "--per-intent-quota", "1"]) == 0
    rows = [json.loads(line) for line in out.open()]
    assert len(rows) == 12 and all(r["label"] == "" and r["why"] for r in rows)
    keys = [dedup_key(r["text"]) for r in rows]
    assert len(set(keys)) == 12 and dedup_key("where is my order number 7 pls") not in keys
    assert all(int(r["request_id"][1:]) % 10 for r in rows)  # shadow records never picked
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    raw = out.with_suffix(".csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads it as UTF-8
    with out.with_suffix(".csv").open(encoding="utf-8-sig", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0])[-1] == "label" and {"text", "guess", "confidence", "why"} <= set(table[0])
    assert len(table) == 12 and all(r["label"] == "" for r in table)


def test_a_formula_in_a_message_stays_text_in_the_csv(tmp_path):
    row = dict.fromkeys(active_learning.CSV_FIELDS, "")
    jsonl, path = write_batch([{**row, "text": "=HYPERLINK(1)"}], tmp_path / "b.jsonl")
    assert json.loads(jsonl.read_text())["text"] == "=HYPERLINK(1)"  # the JSONL keeps it exact
    with path.open(encoding="utf-8-sig", newline="") as f:
        assert next(csv.DictReader(f))["text"] == "'=HYPERLINK(1)"  # Excel shows, never runs it
