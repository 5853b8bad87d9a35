"""The generated-corpus cache: never a truncated corpus reused, one writer at a time."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from mangaassist.data.sources import cached_corpus

SETTINGS = {"n": 300, "seed": 3, "label_noise": 0.03}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_truncated_cache_is_named_and_generated_again(tmp_path, capsys):
    corpus = cached_corpus(tmp_path / "key", **SETTINGS)
    whole = corpus.read_bytes()
    corpus.write_bytes(whole[: len(whole) // 2])  # what a run killed mid-write used to leave
    capsys.readouterr()
    again = cached_corpus(tmp_path / "key", **SETTINGS)
    assert "warning=corpus_cache_mismatch" in capsys.readouterr().out
    assert again.read_bytes() == whole


def test_an_intact_cache_is_reused(tmp_path, capsys):
    corpus = cached_corpus(tmp_path / "key", **SETTINGS)
    mtime = corpus.stat().st_mtime_ns
    capsys.readouterr()
    assert cached_corpus(tmp_path / "key", **SETTINGS).stat().st_mtime_ns == mtime
    assert "[GENERATE]" not in capsys.readouterr().out


def test_two_processes_building_the_same_seed_end_with_one_complete_corpus(tmp_path):
    code = (
        "import sys; from pathlib import Path; from mangaassist.data.sources import cached_corpus;"
        f"cached_corpus(Path(sys.argv[1]), **{SETTINGS!r})"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "key")]) for _ in range(2)
    ]
    assert [p.wait(120) for p in procs] == [0, 0]
    corpus = tmp_path / "key" / "corpus.jsonl"
    report = json.loads((tmp_path / "key" / "generation_report.json").read_text())
    assert _sha(corpus) == report["sha256"]
    assert sum(1 for _ in corpus.open()) == SETTINGS["n"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key", "key.lock"]  # no temp left
