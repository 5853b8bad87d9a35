"""``mangaassist predict`` gives the server's answers from the command line."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from mangaassist.cli import main
from mangaassist.inference import Predictor, open_bundle

TEXTS = ["where is my order", "any sales this weekend pls", "hi"]


def test_one_message_prints_intent_confidence_route_and_top3(tiny_bundle, capsys):
    assert main(["predict", str(tiny_bundle), "where", "is", "my", "order"]) == 0
    out = capsys.readouterr().out.splitlines()
    want = Predictor.from_bundle(open_bundle(tiny_bundle)).classify(["where is my order"])[0]
    assert out[0].startswith(f"{want['intent']}  {want['confidence']:.3f}  ")
    assert ("fallback (" in out[0]) == want["fallback"] and out[1].startswith("  top-3: ")


def test_file_in_jsonl_out_matches_the_predictor(tiny_bundle, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(tiny_bundle), "--file", str(src), "--out", str(out)]) == 0
    assert f"[PREDICT] n=3 out={out}" in capsys.readouterr().out
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    want = Predictor.from_bundle(open_bundle(tiny_bundle)).classify(TEXTS)
    assert [r["text"] for r in rows] == TEXTS
    for r, w in zip(rows, want, strict=True):
        assert r["intent"] == w["intent"] and abs(r["confidence"] - w["confidence"]) < 1e-9
        assert r["fallback"] == w["fallback"] and r["route"] == w["route"]


def test_lines_on_stdin_are_classified_one_each(tiny_bundle, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\n\nwhere is my order\n"))
    assert main(["predict", str(tiny_bundle), "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["hi", "where is my order"]


def test_a_missing_target_is_one_error_line(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nope"), "hi"]) == 2
    assert "neither a bundle" in capsys.readouterr().err


def test_interactive_prompt_answers_until_an_empty_line(tiny_bundle):
    # A pseudo-terminal, so predict sees a TTY and prompts, as a person would use it.
    script = f"{sys.executable} -m mangaassist.cli predict {tiny_bundle}"
    out = subprocess.run(
        ["script", "-qc", script, "/dev/null"],
        input="hi\n\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and "type a message" in out.stdout and "top-3:" in out.stdout
