"""Registry: versions, champion pointer, rollback, and atomicity under simulated crashes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mangaassist.errors import UserError
from mangaassist.release.model_card import render_model_card
from mangaassist.release.registry import Registry, default_root, tokenizer_sha256


def fake_run(root: Path, acc: float = 0.9) -> Path:
    """A run directory with every file the registry copies (contents are placeholders)."""
    files = {
        "config.yaml": "model:\n  name: tiny\n  max_length: 32\nseed: 0\n",
        "labels.json": json.dumps(["a", "b"]),
        "class_counts.json": json.dumps({"a": 95, "b": 5}),
        "backbone/config.json": "{}",
        "tokenizer/tokenizer.json": '{"vocab": 1}',
        "tokenizer/tokenizer_config.json": "{}",
        "checkpoints/best.ckpt": "weights",
        "metrics.json": "{}",
        "data/val.jsonl": '{"text": "x", "label": "a"}\n',
        "data/test.jsonl": '{"text": "y", "label": "b"}\n',
        "calibration.json": json.dumps(
            {
                "temperature": 1.5,
                "global_threshold": 0.6,
                "margin": 0.1,
                "thresholds": {"a": 0.6, "b": 0.7},
            }
        ),
        "eval/test/metrics.json": json.dumps(
            {
                "n": 1,
                "acc": acc,
                "macro_f1": acc - 0.05,
                "rare_recall": 0.5,
                "rare_classes": ["b"],
                "calibration": {"ece_after": 0.02, "ece_before": 0.05},
                "latency": {"p50_ms": 4.0, "p95_ms": 7.5, "p99_ms": 9.0, "n": 1, "num_threads": 1},
                "per_class": [],
                "confused_pairs": [],
            }
        ),
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture
def run(tmp_path):
    return fake_run(tmp_path / "run")


def listing(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "versions").iterdir())


def test_register_promote_rollback(tmp_path, run):
    reg = Registry(tmp_path / "reg")
    assert reg.register(run) == "v1"
    assert reg.register(run) == "v2"
    assert reg.versions() == ["v1", "v2"]
    info = reg.info("v1")
    assert info["tokenizer_sha256"] == tokenizer_sha256(run / "tokenizer")
    assert info["metrics"]["test/acc"] == 0.9 and info["metrics"]["latency/p95_ms"] == 7.5
    assert (reg.path("v1") / "checkpoints" / "best.ckpt").read_text() == "weights"
    assert (reg.path("v1") / "eval" / "test" / "metrics.json").is_file()
    assert reg.champion() is None

    reg.promote("v1")
    reg.promote("v2")
    assert reg.champion() == "v2"
    assert reg.rollback() == "v1"
    assert reg.champion() == "v1"
    with pytest.raises(UserError, match="nothing to roll back"):
        reg.rollback()
    events = [(e["event"], e["version"]) for e in reg.history()]
    assert events == [
        ("register", "v1"),
        ("register", "v2"),
        ("promote", "v1"),
        ("promote", "v2"),
        ("rollback", "v1"),
    ]


def test_checkpoint_is_hard_linked_not_copied(tmp_path, run):
    reg = Registry(tmp_path / "reg")
    reg.register(run)
    a = os.stat(run / "checkpoints" / "best.ckpt")
    b = os.stat(reg.path("v1") / "checkpoints" / "best.ckpt")
    assert a.st_ino == b.st_ino


def test_tokenizer_hash_changes_with_any_file(tmp_path, run):
    before = tokenizer_sha256(run / "tokenizer")
    assert before == tokenizer_sha256(run / "tokenizer")
    (run / "tokenizer" / "tokenizer_config.json").write_text('{"lower": true}')
    assert tokenizer_sha256(run / "tokenizer") != before
    (tmp_path / "moved").mkdir()
    (tmp_path / "moved" / "other.json").write_text('{"vocab": 1}')
    (tmp_path / "moved2").mkdir()
    (tmp_path / "moved2" / "tokenizer.json").write_text('{"vocab": 1}')
    assert tokenizer_sha256(tmp_path / "moved") != tokenizer_sha256(tmp_path / "moved2")


def test_promote_unknown_or_current_version_is_a_user_error(tmp_path, run):
    reg = Registry(tmp_path / "reg")
    reg.register(run)
    with pytest.raises(UserError, match=r"no version 'v7'.*known: v1"):
        reg.promote("v7")
    reg.promote("v1")
    with pytest.raises(UserError, match="already the champion"):
        reg.promote("v1")


def test_crash_during_promotion_leaves_the_old_champion(tmp_path, run, monkeypatch):
    reg = Registry(tmp_path / "reg")
    reg.register(run)
    reg.register(run)
    reg.promote("v1")
    pointer = (reg.root / "champion.json").read_text()

    def crash(*args, **kwargs):
        raise OSError("power cut between writing the new pointer and swapping it in")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        reg.promote("v2")
    monkeypatch.undo()
    assert reg.champion() == "v1"
    assert (reg.root / "champion.json").read_text() == pointer
    assert not list(reg.root.glob(".champion*"))  # the temp pointer was cleaned up
    assert [e["event"] for e in reg.history()] == ["register", "register", "promote"]
    reg.promote("v2")  # the registry still works after the crash
    assert reg.champion() == "v2"


def test_crash_during_register_lists_no_half_written_version(tmp_path, run, monkeypatch):
    reg = Registry(tmp_path / "reg")
    reg.register(run)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="disk full"):
        reg.register(run)
    monkeypatch.undo()
    assert reg.versions() == ["v1"]
    assert listing(reg.root) == ["v1"]  # the hidden assembly folder was removed
    assert reg.register(run) == "v2"


def test_a_leftover_temp_folder_from_a_killed_process_is_never_listed(tmp_path, run):
    reg = Registry(tmp_path / "reg")
    reg.register(run)
    (reg.root / "versions" / ".tmp-v2-deadbeef" / "checkpoints").mkdir(parents=True)
    (reg.root / "versions" / "v3").mkdir()  # no version.json: never completed
    assert reg.versions() == ["v1"]


def test_bad_run_dir_writes_nothing(tmp_path, run):
    (run / "checkpoints" / "best.ckpt").unlink()
    reg = Registry(tmp_path / "reg")
    with pytest.raises(UserError, match=r"missing \['checkpoints/best.ckpt'\]"):
        reg.register(run)
    assert reg.versions() == [] and reg.history() == []
    with pytest.raises(UserError, match="no such model directory"):
        reg.register(tmp_path / "nope")


def test_model_card_is_written_into_the_version(tmp_path, run):
    reg = Registry(tmp_path / "reg")
    v = reg.register(run, extra_files=lambda v, f: {"MODEL_CARD.md": render_model_card(v, f)})
    card = (reg.path(v) / "MODEL_CARD.md").read_text()
    assert card.startswith("# MangaAssist intent classifier v1")
    for needle in (
        "## Data",
        "| b | 5 | 5.0% | rare |",
        "## Metrics",
        "accuracy: 90.0%",
        "Temperature T = 1.500",
        "b 0.70",
        "P95 7.50 ms",
        "## Known confusions",
        "`model.max_length` | `32`",
    ):
        assert needle in card, needle


def test_default_root_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MANGAASSIST_REGISTRY", str(tmp_path / "r"))
    assert default_root() == tmp_path / "r"
    monkeypatch.delenv("MANGAASSIST_REGISTRY")
    assert default_root() == Path("registry")
