"""The retrain loop's data step, without training: labels, dedup, protected sets, data version.

The champions here are crafted folders (placeholder weights): everything up to training is
checked before a model is loaded, so none is.
"""

from __future__ import annotations

import doctest
import hashlib
import importlib
import json
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from mangaassist.cli import main
from mangaassist.data.normalize import dedup_key
from mangaassist.data.schema import INTENTS, Example, read_examples, write_examples
from mangaassist.errors import UserError
from mangaassist.evaluation.after_training import GOLDEN
from mangaassist.evaluation.settings import GateSettings
from mangaassist.release.registry import Registry
from mangaassist.retrain.labels import read_label_file
from mangaassist.retrain.loop import candidate_config, prepare, resolve_champion
from mangaassist.retrain.merge import merge_labels, write_merge


def jsonl(rows) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def fake_champion(root: Path) -> Path:
    """A run directory's files, placeholders for the model, real data splits."""
    splits = {
        "train": [("where is my order", "order_tracking"), ("hi there", "chitchat")],
        "val": [("do you ship to canada", "faq")],
        "test": [("let me talk to a human", "escalation"), ("any sales now", "promotion")],
    }
    config = {
        "seed": 0,
        "paths": {"output_dir": "/old/run"},
        "trainer": {"default_root_dir": "/old/run", "max_epochs": 3},
        "callbacks": {"checkpoint": {"dirpath": "/old/run/checkpoints"}},
        "logger": {"csv": {"save_dir": "/old/run"}},
        "tags": ["minilm"],
        "data": {
            "name": "files",
            "source": {"_target_": "mangaassist.data.sources.files", "train": "/old/toy.jsonl"},
            "train": "/old/toy.jsonl",
            "module": {"batch_size": 16},
        },
        "other": "/old/runner",  # shares the prefix but is not under the run: kept
    }
    files = {
        "config.yaml": yaml.safe_dump(config),
        "labels.json": json.dumps(list(INTENTS)),
        "backbone/config.json": "{}",
        "tokenizer/tokenizer.json": "{}",
        "checkpoints/best.ckpt": "weights",
        **{
            f"data/{k}.jsonl": jsonl({"text": t, "label": lb} for t, lb in v)
            for k, v in splits.items()
        },
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize("name", ["labels", "merge", "recovery", "settings", "loop"])
def test_doctests(name):
    module = importlib.import_module(f"mangaassist.retrain.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_label_file_errors_name_the_line_and_the_valid_intents(tmp_path):
    f = tmp_path / "labelled.jsonl"
    f.write_text(
        jsonl([{"text": "where is it", "label": "order_tracking"}, {"text": "x", "label": "ordr"}])
    )
    with pytest.raises(UserError) as err:
        read_label_file(f, INTENTS)
    assert str(err.value) == f"{f}:2: unknown label 'ordr'; the valid intents are " + ", ".join(
        INTENTS
    )
    f.write_text(jsonl([{"text": "where is it", "label": "order_trackng"}]))
    with pytest.raises(UserError, match=r":1: unknown label 'order_trackng'; did you mean order_"):
        read_label_file(f, INTENTS)
    f.write_text("\n\n")
    with pytest.raises(UserError, match="the file is empty"):
        read_label_file(f, INTENTS)
    f.write_text(jsonl([{"text": "a", "label": ""}, {"text": "b", "label": None}]))
    with pytest.raises(UserError, match="none of its 2 rows has a label; fill the label column"):
        read_label_file(f, INTENTS)
    f.write_text(jsonl([{"label": "faq"}]))
    with pytest.raises(UserError, match=r"labelled.jsonl:1: no text"):
        read_label_file(f, INTENTS)
    with pytest.raises(UserError, match="no such labels file"):
        read_label_file(tmp_path / "nope.jsonl", INTENTS)


def test_the_labellers_csv_reads_back_as_active_learn_wrote_it(tmp_path):
    f = tmp_path / "to_label.csv"
    rows = "text,request_id,guess,label\r\n'=SUM(A1) refund,r1,faq,return_request\r\n"
    rows += "hi,r2,chitchat,\r\n"
    f.write_bytes(b"\xef\xbb\xbf" + rows.encode())  # Excel's byte-order mark
    got = read_label_file(f, INTENTS)
    assert [(e.text, e.label, e.id) for e in got.examples] == [
        ("=SUM(A1) refund", "return_request", "r1")  # the formula guard is undone
    ]
    assert got.unlabelled == 1 and got.rows == 2
    assert got.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()


def test_merge_drops_protected_sets_first_then_known_conflicting_and_repeated():
    base = [Example("Where is my order", "order_tracking"), Example("hello", "chitchat")]
    protected = {
        "test": {dedup_key("talk to a human")},
        "golden": {dedup_key("any sales")},
        "gate_set": {dedup_key("is vol 3 out")},
        "val": {dedup_key("do you ship to canada"), dedup_key("any sales")},
    }
    new = [
        Example("TALK TO A HUMAN!!", "escalation"),  # test, whatever the spelling
        Example("any sales?", "promotion"),  # golden (and val): golden wins
        Example("is vol 3 out", "product_question"),  # gate set
        Example("Do you ship to Canada", "faq"),  # val
        Example("where is my order?", "return_request"),  # train, labelled otherwise
        Example("my coupon fails", "checkout_help"),
        Example("my coupon fails!", "promotion"),  # the same message, another label
        Example("box sets under 50", "product_discovery"),
        Example("Box sets under 50", "product_discovery"),  # a repeat
        Example("recommend me a horror manga", "recommendation"),
    ]
    where = [f"f:{i + 1}" for i in range(len(new))]
    m = merge_labels(new, where, base, protected)
    assert [e.text for e in m.added] == ["box sets under 50", "recommend me a horror manga"]
    assert m.train == [*base, *m.added]  # the champion's examples first, unchanged
    assert m.counts == {
        "in_test": 1,
        "in_golden": 1,
        "in_gate_set": 1,
        "in_val": 1,
        "in_train": 1,
        "conflicting_labels": 2,
        "duplicate_in_labels": 1,
    }
    assert m.disagrees == 1
    by_where = {d["where"]: d for d in m.dropped}
    assert by_where["f:5"]["detail"] == "train label order_tracking"
    assert by_where["f:9"]["detail"] == "same as f:8"
    assert by_where["f:7"]["detail"] == "labelled checkout_help, promotion"
    kept = {dedup_key(e.text) for e in m.train}
    for name in ("test", "golden", "gate_set", "val"):
        assert not kept & protected[name], name


def test_the_data_version_is_the_merged_files_sha256_and_names_its_parent(tmp_path):
    parent = tmp_path / "parent_train.jsonl"
    write_examples([Example("hello", "chitchat")], parent)  # as training saves its split
    m = merge_labels([Example("new one", "faq")], ["f:1"], read_examples(parent), {})
    record = write_merge(
        tmp_path / "retrain",
        m,
        parent={"model": "v1", "train_file": str(parent)},
        labels_file={"path": "f", "sha256": "abc", "rows": 1, "unlabelled": 0},
        protected={"test": {"file": "t", "n": 3}},
    )
    merged = tmp_path / "retrain" / "train.jsonl"
    assert record["data_version"] == "sha256:" + hashlib.sha256(merged.read_bytes()).hexdigest()
    added = b'{"text": "new one", "label": "faq", "source": "production"}\n'
    assert merged.read_bytes() == parent.read_bytes() + added  # the parent's bytes, then the new
    assert record["parent"]["data_version"] == (
        "sha256:" + hashlib.sha256(parent.read_bytes()).hexdigest()
    )
    assert record["counts"] == {
        "base_train": 1,
        "labelled": 1,
        "added": 1,
        "dropped": {},
        "disagrees_with_train": 0,
        "merged_train": 2,
        "added_per_intent": {"faq": 1},
    }
    on_disk = json.loads((tmp_path / "retrain" / "data_version.json").read_text())
    assert on_disk == record
    names = sorted(p.name for p in (tmp_path / "retrain").iterdir())
    assert names == ["added.jsonl", "data_version.json", "dropped.jsonl", "train.jsonl"]


def test_prepare_keeps_test_golden_and_gate_set_out_of_training(tmp_path, capsys):
    reg = Registry(tmp_path / "registry")
    reg.register(fake_champion(tmp_path / "champ"))
    reg.promote("v1")
    gold = read_examples(GOLDEN)[:2]
    (reg.root / "gate_set.jsonl").write_text(jsonl([{"text": "is vol 3 out", "label": "faq"}]))
    rows = [
        {"text": "Let me talk to a HUMAN", "label": "escalation", "request_id": "r1"},
        {"text": gold[0].text, "label": gold[0].label},
        {"text": gold[1].text.upper(), "label": gold[1].label},
        {"text": "is vol 3 out?", "label": "product_question"},
        {"text": "hi there", "label": "chitchat"},
        {"text": "glorpcore quillborne vol 2 in stock?", "label": "product_question"},
        {"text": "glorpcore quillborne vol 2 in stock", "label": "product_question"},
        {"text": "skip me", "label": ""},
    ]
    labels = tmp_path / "labelled.jsonl"
    labels.write_text(jsonl(rows))
    champ = resolve_champion(reg, None)
    _, _, record = prepare(labels, champ, reg, tmp_path / "out", GateSettings())
    line = capsys.readouterr().out
    assert (
        '[RETRAIN_DATA] labelled=7 unlabelled=1 added=1 dropped="in_test=1 in_golden=2 '
        'in_gate_set=1 in_train=1 duplicate_in_labels=1"' in line
    )
    merged = read_examples(tmp_path / "out" / "retrain" / "train.jsonl")
    assert [e.text for e in merged] == [
        "where is my order",
        "hi there",
        "glorpcore quillborne vol 2 in stock?",
    ]
    assert merged[-1].tags == ["retrain"]
    assert record["parent"]["model"] == "v1"
    assert set(record["protected"]) == {"test", "val", "golden", "gate_set"}
    assert record["labels_file"]["rows"] == 8 and record["labels_file"]["unlabelled"] == 1
    # Nothing new at all is an error, with the dropped list to read.
    labels.write_text(jsonl(rows[:5]))
    with pytest.raises(UserError, match="none of its 5 labelled messages is new"):
        prepare(labels, champ, reg, tmp_path / "out2", GateSettings())


def test_candidate_config_moves_the_run_and_reads_the_merged_data(tmp_path):
    reg = Registry(tmp_path / "registry")
    champ = resolve_champion(reg, str(fake_champion(tmp_path / "champ")))
    out = tmp_path / "cand"
    cfg = candidate_config(champ, out / "retrain" / "train.jsonl", out, ["trainer.max_epochs=1"])
    assert cfg.paths.output_dir == str(out) and cfg.trainer.default_root_dir == str(out)
    assert cfg.callbacks.checkpoint.dirpath == str(out / "checkpoints")
    assert cfg.logger.csv.save_dir == str(out) and cfg.other == "/old/runner"
    src = OmegaConf.to_container(cfg.data.source)
    assert src == {
        "_target_": "mangaassist.data.sources.files",
        "train": str(out / "retrain" / "train.jsonl"),
        "val": str(champ.val),
        "test": str(champ.test),
        "labels": list(INTENTS),
        "text_column": "text",
        "label_column": "label",
    }
    assert cfg.data.train == src["train"] and "val" not in cfg.data
    assert cfg.trainer.max_epochs == 1 and cfg.evaluate is True and list(cfg.tags)[-1] == "retrain"
    assert cfg.data.module.batch_size == 16  # the champion's settings stand
    with pytest.raises(UserError, match=r"the champion's config has no key 'trainer\.max_epoch'"):
        candidate_config(champ, out / "t.jsonl", out, ["trainer.max_epoch=1"])
    with pytest.raises(UserError, match="expected key=value"):
        candidate_config(champ, out / "t.jsonl", out, ["trainer.max_epochs"])


def test_cli_errors_name_the_missing_piece(tmp_path, capsys):
    labels = tmp_path / "labelled.jsonl"
    labels.write_text(jsonl([{"text": "hi", "label": "chitchat"}]))
    reg = tmp_path / "registry"
    args = ["retrain", "--labels", str(labels), "--registry", str(reg)]
    assert main(args) == 2
    assert f"error: no registry at {reg}: pass --registry DIR" in capsys.readouterr().err
    reg.mkdir()
    assert main(args) == 2
    assert f"registry {reg} has no champion to retrain" in capsys.readouterr().err
    assert main(["retrain", "--labels", str(tmp_path / "nope.jsonl"), "--registry", str(reg)]) == 2
    assert "nope.jsonl: no such labels file" in capsys.readouterr().err
    champ = fake_champion(tmp_path / "champ")
    (champ / "data" / "train.jsonl").unlink()
    assert main([*args, "--champion", str(champ)]) == 2
    assert "lacks ['train.jsonl']" in capsys.readouterr().err
    (champ / "data" / "train.jsonl").write_text(jsonl([{"text": "x y", "label": "faq"}]))
    labels.write_text(jsonl([{"text": "hi", "label": "chitchatt"}]))
    assert main([*args, "--champion", str(champ), "--out", str(tmp_path / "o")]) == 2
    assert "labelled.jsonl:1: unknown label 'chitchatt'; did you mean chitchat?" in (
        capsys.readouterr().err
    )
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    assert main([*args, "--champion", str(champ), "--out", str(tmp_path / "used")]) == 2
    assert "already holds files" in capsys.readouterr().err
