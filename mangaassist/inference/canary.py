"""The canary: fixed messages whose answers a bundle records at export and must repeat at load.

Before a server switches traffic to a new model (blue/green), it runs the bundle's
``canary.jsonl`` through the freshly loaded predictor and compares each intent and confidence
with what the export recorded for that precision. A bundle that loads but answers differently
(another ONNX Runtime build, a swapped calibration file, a graph damaged in a way that still
parses) is refused before a single user sees it.

Format, one JSON object per line: ``{"text": ..., "fp32": {"intent": .., "confidence": ..},
"int8": {...}}`` (``int8`` only when the bundle has it). A bundle with the secondary-intent
head also records each answer's ``secondary_intents`` (``[{"intent", "probability"}]``), and
they must repeat too: the same intents, in order, each probability within the tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

from mangaassist.errors import UserError

CANARY_FILE = "canary.jsonl"
CANARY_ATOL = 1e-4  # confidence difference tolerated (float noise across batch shapes ~1e-6)


def record_canary(folder: Path, predictors: dict, texts: list[str]) -> None:
    """Write ``canary.jsonl``: each text's answer under each precision's predictor."""
    answers = {name: p.classify(texts) for name, p in predictors.items()}
    with (folder / CANARY_FILE).open("w", encoding="utf-8") as f:
        for i, text in enumerate(texts):
            row = {"text": text}
            for name, rows in answers.items():
                row[name] = {"intent": rows[i]["intent"], "confidence": rows[i]["confidence"]}
                if "secondary_intents" in rows[i]:
                    row[name]["secondary_intents"] = rows[i]["secondary_intents"]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def check_canary(folder: Path, predictor, atol: float = CANARY_ATOL) -> int:
    """Compare the predictor's answers with the recorded ones; returns the messages checked.

    Raises:
        UserError: no canary file, no record for this precision, or any answer that differs
            (the first few are named).
    """
    path = Path(folder) / CANARY_FILE
    if not path.is_file():
        raise UserError(f"{path}: no canary; re-export the run with `mangaassist export`")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    wanted = [r.get(predictor.precision) for r in rows]
    if not rows or any(w is None for w in wanted):
        raise UserError(f"{path}: no {predictor.precision} answers recorded; re-export the run")
    got = predictor.classify([r["text"] for r in rows])
    bad = [
        f"{r['text']!r}: {_show(g)} != {_show(w)}"
        for r, g, w in zip(rows, got, wanted, strict=True)
        if not _same(g, w, atol)
    ]
    if bad:
        raise UserError(
            f"{path}: {len(bad)} of {len(rows)} canary answers differ from the export's: "
            + "; ".join(bad[:3])
        )
    return len(rows)


def _same(got: dict, want: dict, atol: float) -> bool:
    """One answer repeats a recorded one (secondary intents only when they were recorded)."""
    if got["intent"] != want["intent"] or abs(got["confidence"] - want["confidence"]) > atol:
        return False
    if "secondary_intents" not in want:  # a canary from before the head, or a bundle without
        return True
    g, w = got.get("secondary_intents", []), want["secondary_intents"]
    return [x["intent"] for x in g] == [x["intent"] for x in w] and all(
        abs(a["probability"] - b["probability"]) <= atol for a, b in zip(g, w, strict=True)
    )


def _show(answer: dict) -> str:
    text = f"{answer['intent']} {answer['confidence']:.5f}"
    second = answer.get("secondary_intents")
    if second:
        text += " + " + ",".join(f"{x['intent']} {x['probability']:.5f}" for x in second)
    return text
