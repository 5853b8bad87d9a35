"""The gate's fixed comparison set, and its refusal of a set either model trained on.

The run directories here are crafted files (no training): the set is chosen and the overlap
checked before any model loads, so a placeholder checkpoint is never read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mangaassist.errors import UserError
from mangaassist.evaluation.settings import EvalSettings, GateSettings
from mangaassist.release import promotion
from mangaassist.release.promotion import GATE_SET_FILE, comparison_set, gate_candidate
from mangaassist.release.registry import Registry


def jsonl(*texts: str, label: str = "a") -> str:
    return "".join(json.dumps({"text": t, "label": label}) + "\n" for t in texts)


def fake_run(root: Path, train: tuple[str, ...] | None = None, test: tuple[str, ...] = ("y",)):
    """A run directory's files (placeholders); ``train=None``: no data/train.jsonl, as today."""
    files = {
        "config.yaml": "model:\n  name: tiny\nseed: 0\n",
        "labels.json": json.dumps(["a", "b"]),
        "backbone/config.json": "{}",
        "tokenizer/tokenizer.json": '{"vocab": 1}',
        "checkpoints/best.ckpt": "weights",
        "data/val.jsonl": jsonl("val message"),
        "data/test.jsonl": jsonl(*test),
    }
    if train is not None:
        files["data/train.jsonl"] = jsonl(*train)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


class Loaded(Exception):
    """Raised in place of loading a model: the gate got past the overlap check."""


@pytest.fixture
def no_model_load(monkeypatch):
    def stop(path):
        raise Loaded(str(path))

    monkeypatch.setattr(promotion, "load_model_run", stop)


def test_the_registry_gate_set_is_the_default_once_present(tmp_path):
    reg = Registry(tmp_path / "reg")
    cand = fake_run(tmp_path / "cand")
    s = GateSettings()
    # Without a fixed set: the candidate's own test split (with a note, see below).
    assert comparison_set(cand, reg, s) == (cand / "data" / "test.jsonl", "candidate_test")
    (tmp_path / "reg").mkdir()
    (tmp_path / "reg" / GATE_SET_FILE).write_text(jsonl("held out"))
    assert comparison_set(cand, reg, s) == (tmp_path / "reg" / GATE_SET_FILE, "registry")
    # A gate_set in the settings wins over the registry's file; --data over both.
    other = tmp_path / "traffic.jsonl"
    other.write_text(jsonl("real traffic"))
    configured = GateSettings(gate_set=str(other))
    assert comparison_set(cand, reg, configured) == (other, "gate_set")
    assert comparison_set(cand, reg, configured, tmp_path / "x.jsonl")[1] == "--data"
    with pytest.raises(UserError, match=r"gates\.gate_set: .*does not exist"):
        comparison_set(cand, reg, GateSettings(gate_set=str(tmp_path / "missing.jsonl")))


def test_refuses_a_gate_set_either_model_trained_on(tmp_path, no_model_load):
    reg = Registry(tmp_path / "reg")
    # The champion's run kept its train split and its registry version links it.
    champ_run = fake_run(tmp_path / "champ", train=("Where is my order??", "hello"))
    reg.register(champ_run)
    reg.promote("v1")
    assert (reg.path("v1") / "data" / "train.jsonl").is_file()
    cand = fake_run(tmp_path / "cand", train=("Is vol. 12 in stock?!", "refund please", "hi"))
    (reg.root / GATE_SET_FILE).write_text(
        # Same texts after normalisation: case, punctuation and spacing differ.
        jsonl("is vol 12 in stock", "REFUND  please", "where is my order", "a fresh message")
    )
    with pytest.raises(UserError) as err:
        gate_candidate(str(cand), reg, EvalSettings(), GateSettings(), log=lambda _: None)
    msg = str(err.value)
    assert "2 in " in msg and f"{cand}'s" in msg and "1 in v1's" in msg
    assert "of its 4 messages are in the training data" in msg


def test_a_clean_gate_set_is_used_and_said_so(tmp_path, no_model_load):
    reg = Registry(tmp_path / "reg")
    cand = fake_run(tmp_path / "cand", train=("refund please",), test=("refund please",))
    (tmp_path / "reg").mkdir()
    (reg.root / GATE_SET_FILE).write_text(jsonl("a fresh message"))
    lines: list[str] = []
    with pytest.raises(Loaded):  # past the check, the candidate would be loaded and scored
        gate_candidate(str(cand), reg, EvalSettings(), GateSettings(), log=lines.append)
    assert any(line.startswith("[GATE] overlap=0 ") for line in lines), lines
    # Without the fixed set the candidate's own test split is used, and here it is refused:
    # the run trained on one of its "test" messages.
    (reg.root / GATE_SET_FILE).unlink()
    with pytest.raises(UserError, match=r"1 in .* of its 1 messages"):
        gate_candidate(str(cand), reg, EvalSettings(), GateSettings(), log=lines.append)


def test_a_model_without_its_train_split_is_unverified_not_clean(tmp_path, no_model_load):
    reg = Registry(tmp_path / "reg")
    cand = fake_run(tmp_path / "cand")  # as runs are saved today: val and test only
    lines: list[str] = []
    with pytest.raises(Loaded):
        gate_candidate(str(cand), reg, EvalSettings(), GateSettings(), log=lines.append)
    assert any(line.startswith("[GATE] gate_set=none ") for line in lines), lines
    assert any(line.startswith(f"[GATE] overlap=unverified models={cand}") for line in lines)
    # A refit run's val_seen_in_training.jsonl is training data: an overlap there is refused
    # even without train.jsonl.
    (cand / "data" / "val_seen_in_training.jsonl").write_text(jsonl("y"))
    with pytest.raises(UserError, match="1 in "):
        gate_candidate(str(cand), reg, EvalSettings(), GateSettings(), log=lines.append)


def test_registry_gate_set_command_configures_the_set_once(tmp_path, capsys):
    from mangaassist.cli import main

    reg = Registry(tmp_path / "reg")
    reg.register(fake_run(tmp_path / "champ", train=("Where is my order??", "hello")))
    reg.promote("v1")
    root = ["registry", "--root", str(reg.root), "gate-set"]
    # A set the champion trained on would make every gate refuse: refused now, nothing written.
    dirty = tmp_path / "dirty.jsonl"
    dirty.write_text(jsonl("where is my order", "a fresh message"))
    assert main([*root, str(dirty)]) == 2
    assert "1 of its 2 messages are in the champion v1's training data" in capsys.readouterr().err
    assert not (reg.root / GATE_SET_FILE).exists()
    # A held-out set is copied in, hashed, recorded, and from then on is the gate's default.
    held = tmp_path / "held_out.jsonl"
    held.write_text(jsonl("a fresh message", "is vol 12 in stock"))
    assert main([*root, str(held)]) == 0
    out = capsys.readouterr().out
    assert "[REGISTRY] event=gate_set n=2 " in out and "changed=yes champion_overlap=0" in out
    assert comparison_set(tmp_path, reg, GateSettings()) == (reg.root / GATE_SET_FILE, "registry")
    event = reg.history()[-1]
    assert event["event"] == "gate_set" and event["n"] == 2 and event["source"] == str(held)
    assert event["sha256"] == promotion.file_sha256(reg.root / GATE_SET_FILE)
    # Once: the same set again is a no-op; a different one is refused unless --replace.
    assert main([*root, str(held)]) == 0 and "changed=no" in capsys.readouterr().out
    other = tmp_path / "other.jsonl"
    other.write_text(jsonl("something else entirely"))
    assert main([*root, str(other)]) == 2
    assert "already has a gate set" in capsys.readouterr().err
    assert len(Registry(reg.root).history()) == 3  # register, promote, gate_set
    assert main([*root, str(other), "--replace"]) == 0
    assert [e["text"] for e in map(json.loads, (reg.root / GATE_SET_FILE).open())] == [
        "something else entirely"
    ]
    assert reg.history()[-1]["replaced"] == event["sha256"]
