"""Bad input stops a run before training, with a message naming the file, line or class."""

import json

import pytest

from mangaassist.data.schema import read_examples
from mangaassist.errors import UserError
from mangaassist.training.train import train
from tests.conftest import write_toy_jsonl


def write(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_unknown_label_in_val_names_file_and_line(tiny_cfg, tmp_path):
    val = write(
        tmp_path / "val.jsonl",
        [{"text": "hi", "label": "chitchat"}, {"text": "where is it", "label": "order_trackin"}],
    )
    with pytest.raises(UserError, match=r"val\.jsonl:2: unknown label 'order_trackin'"):
        train(tiny_cfg(f"data.val={val}"))


def test_empty_text_names_the_line(tmp_path):
    f = write(
        tmp_path / "a.jsonl", [{"text": "ok", "label": "faq"}, {"text": "  ", "label": "faq"}]
    )
    with pytest.raises(UserError, match=r"a\.jsonl:2: empty text"):
        read_examples(f)


def test_missing_column_csv_points_at_the_header(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("message,label\nhello,chitchat\n")
    with pytest.raises(UserError) as err:
        read_examples(f)
    assert str(err.value) == (
        f"{f}:1: missing column(s) ['text'] in the header (found ['message', 'label']); "
        "rename the column(s), or name yours: data.text_column=message"
    )


def test_non_utf8_file_names_the_line_and_the_fix(tmp_path):
    f = tmp_path / "latin.csv"
    f.write_bytes(
        "text,label\nhello,chitchat\nwhere is my caf\xe9 order,order_tracking\n".encode("latin1")
    )
    with pytest.raises(UserError) as err:
        read_examples(f)
    assert str(err.value) == (
        f"{f}:3: not UTF-8 text (byte 0xe9 at column 16); re-save the file as UTF-8 "
        f"(Excel: 'CSV UTF-8'), or convert it: iconv -f latin1 -t utf-8 {f} > "
        f"{tmp_path / 'latin.utf8.csv'}"
    )


def test_unknown_label_suggests_the_near_one(tmp_path):
    f = write(tmp_path / "v.jsonl", [{"text": "where is it", "label": "order_trackng"}])
    with pytest.raises(
        UserError, match=r"unknown label 'order_trackng'; did you mean order_tracking\? "
    ):
        read_examples(f, ["order_tracking", "faq"])


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path, content):
    f = tmp_path / "empty.jsonl"
    f.write_text(content)
    with pytest.raises(UserError, match="empty"):
        read_examples(f)


def test_unreadable_and_missing_file(tmp_path):
    f = tmp_path / "bin.jsonl"
    f.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UserError, match="UTF-8"):
        read_examples(f)
    with pytest.raises(UserError, match="no such file"):
        read_examples(tmp_path / "nope.jsonl")


def test_malformed_json_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "hi", "label": "chitchat"}\n{"text": "oops"\n')
    with pytest.raises(UserError, match=r"bad\.jsonl:2: not valid JSON"):
        read_examples(f)


def test_class_too_small_to_stratify_names_the_class(tiny_cfg, tmp_path):
    f = write_toy_jsonl(tmp_path / "train.jsonl")
    rows = [json.loads(x) for x in f.read_text().splitlines()]
    rows = [r for r in rows if r["label"] != "escalation"]
    rows.append({"text": "get me a human now", "label": "escalation", "conversation_id": "x"})
    write(f, rows)
    with pytest.raises(UserError, match="escalation"):
        train(tiny_cfg(f"data.train={f}"))


def test_train_py_prints_one_line_and_exits_2(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = subprocess.run(
        [
            sys.executable,
            "train.py",
            "experiment=smoke",
            "data=files",
            f"data.train={empty}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert "error:" in res.stderr and "empty" in res.stderr
    assert "Traceback" not in res.stderr
