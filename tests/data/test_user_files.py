"""Data files people actually have: Excel's BOM, their own column names, typos, tiny classes."""

import csv
import json

import pytest

from mangaassist.data.schema import read_examples
from mangaassist.data.sources import files
from mangaassist.errors import UserError
from mangaassist.training.train import build
from tests.conftest import write_toy_jsonl


def toy_rows(tmp_path, n_per_class=12):
    path = write_toy_jsonl(tmp_path / "toy.jsonl", n_per_class=n_per_class)
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_csv(path, header, rows, encoding="utf-8"):
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_excel_csv_utf8_with_a_byte_order_mark_is_read(tmp_path):
    rows = [("vol 3 の在庫ある?", "product_question"), ("hi", "chitchat")]
    f = write_csv(tmp_path / "excel.csv", ["text", "label"], rows, encoding="utf-8-sig")
    assert f.read_bytes().startswith(b"\xef\xbb\xbf")
    assert [(e.text, e.label) for e in read_examples(f)] == rows
    j = tmp_path / "bom.jsonl"
    j.write_bytes(b"\xef\xbb\xbf" + json.dumps({"text": "hi", "label": "chitchat"}).encode())
    assert read_examples(j)[0].label == "chitchat"


def test_own_column_names_are_mapped_through_the_config(tiny_cfg, tmp_path):
    rows = [(r["text"], r["label"], r["conversation_id"]) for r in toy_rows(tmp_path)]
    f = write_csv(tmp_path / "mine.csv", ["utterance", "intent", "conversation_id"], rows)
    cfg = tiny_cfg(f"data.train={f}", "data.text_column=utterance", "data.label_column=intent")
    dm, _, _ = build(cfg)
    assert len(dm.labels) == 10
    assert sum(map(len, dm.splits.values())) == len(rows)
    assert {e.text for e in dm.splits["train"]} <= {r[0] for r in rows}


def test_a_mapped_column_that_is_missing_says_which(tmp_path):
    f = write_csv(tmp_path / "mine.csv", ["utterance", "label"], [("hi", "chitchat")])
    with pytest.raises(UserError) as err:
        files(str(f), text_column="message")
    assert str(err.value) == (
        f"{f}:1: missing column(s) ['message'] in the header (found ['utterance', 'label']) "
        "(data.text_column=message data.label_column=label)"
    )


def test_a_label_typo_and_a_tiny_class_are_warned_about_before_training(tmp_path, capsys):
    rows = toy_rows(tmp_path, n_per_class=40)
    rows += [{"text": f"where is parcel {i}", "label": "order_trackng"} for i in range(3)]
    f = tmp_path / "typo.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    src = files(str(f))
    assert "order_trackng" in src.labels  # a warning, not an error: it may be a real label
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "[DATA] warning=near_label label=order_trackng n=3 near=order_tracking near_n=40 "
        'note="did you mean order_tracking? typo.jsonl has both; fix the label, or list '
        'data.labels so that an unknown label stops the run"',
        '[DATA] warning=small_class label=order_trackng n=3 median_class=40 note="far fewer '
        "examples than the other classes in typo.jsonl: it will be hard to learn and its "
        'figures noisy; add examples, or merge it into another label"',
    ]
    files(str(f), labels=[*src.labels])  # the labels are given: no guessing, no warning
    assert capsys.readouterr().out == ""


def test_rare_classes_of_a_users_file_follow_its_label_count(tiny_cfg, tmp_path):
    rows = toy_rows(tmp_path, n_per_class=40)
    rows = [r for r in rows if r["label"] != "escalation" or int(r["id"].split("-")[1]) < 14]
    f = tmp_path / "train.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = tiny_cfg(f"data.train={f}")
    assert cfg.data.module.rare_below is None  # not BANKING77's 0.01
    dm, model, _ = build(cfg)
    assert dm.rare_below == 0.5 / 10  # half an even share of ten classes
    assert [dm.labels[i] for i in model.hparams.rare] == ["escalation"]  # 14 of 374 = 3.7%
    assert cfg.data.module.rare_below == 0.05  # what config.yaml (and evaluation) will read
