"""Simulated prediction logs, fast: N serve-shaped JSON lines over a week, built with numpy.

Not the traffic simulator (that one calls the model); this writes lines of the exact shape
``mangaassist serve`` logs (see ``mangaassist/serve/runtime.py``) with plausible values, so the
monitor's speed and memory can be measured at tens of millions of lines in minutes:

* timestamps sorted over ``days`` from ``start`` (UTC), one file per day
  (``predictions-YYYYMMDD.jsonl``), a torn last line in the last file (a ``kill -9``);
* the intent mix of the MangaAssist training split, confidences from a Beta(20, 1.2) (a
  calibrated model ~94% accurate), ``low_confidence`` fallback below 0.5, ``ambiguous`` for
  1%, latency log-normal around 8 ms;
* 5% shadow lines (``role=shadow``), which the monitor must leave out;
* text from a bank of ~600 messages (English, some Japanese) or its sha256 (``privacy=hash``).

Lines are formatted from numpy columns in chunks of 200k with one f-string each (~1.5 us/line).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

INTENT_SHARES = {  # the training split's counts (outputs/.../class_counts.json), as shares
    "product_discovery": 9381,
    "product_question": 6451,
    "recommendation": 7693,
    "faq": 3467,
    "order_tracking": 5133,
    "return_request": 2964,
    "promotion": 2160,
    "checkout_help": 1743,
    "escalation": 1296,
    "chitchat": 4712,
}
_PHRASES = {
    "product_discovery": ["show me horror manga", "any new isekai volumes", "box sets under 50"],
    "product_question": ["is vol 12 of one piece in stock", "is chainsaw man finished"],
    "recommendation": ["something like naruto but darker", "i loved frieren what next"],
    "faq": ["how long does shipping to canada take", "do you accept paypal"],
    "order_tracking": ["where is my order", "when will my package arrive", "注文はどこ"],
    "return_request": ["vol 3 came ripped can i swap it", "cancel my order pls"],
    "promotion": ["any sales this weekend", "is there a student discount", "セールある"],
    "checkout_help": ["my card keeps getting declined", "coupon says invalid at checkout"],
    "escalation": ["i want to talk to a human", "this is the third time, get me a manager"],
    "chitchat": ["lol thanks", "you are a funny bot", "おやすみ"],
}
_TAILS = ["", " pls", " asap", "?", " !!", " for my sister", " in english", " この漫画", " thx"]
CHUNK = 200_000


def message_bank() -> dict[str, list[str]]:
    """Per intent, phrase x tail: the texts both the log and the reference split draw from."""
    return {i: [p + t for p in ps for t in _TAILS] for i, ps in _PHRASES.items()}


def write_reference_run(folder: str | Path, n_val: int = 2000, seed: int = 1) -> Path:
    """A run-directory-like reference: labels.json, class_counts.json, data/val.jsonl."""
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    labels = list(INTENT_SHARES)
    (folder / "labels.json").write_text(json.dumps(labels))
    (folder / "class_counts.json").write_text(json.dumps(INTENT_SHARES, indent=1))
    rng, bank = np.random.default_rng(seed), message_bank()
    p = np.array(list(INTENT_SHARES.values()), float)
    with (folder / "data" / "val.jsonl").open("w", encoding="utf-8") as f:
        for k in rng.choice(len(labels), n_val, p=p / p.sum()):
            text = bank[labels[k]][rng.integers(len(bank[labels[k]]))]
            f.write(json.dumps({"text": text, "label": labels[k]}, ensure_ascii=False) + "\n")
    return folder


def write_logs(
    folder: str | Path,
    n: int,
    *,
    days: int = 7,
    start: str = "2026-12-07T00:00:00",
    seed: int = 0,
    privacy: str = "text",
    label_share: float = 0.01,
    torn: bool = True,
) -> dict:
    """Write ``n`` log lines into ``folder``; returns counts and the labelled-sample path.

    ``label_share`` of the champion lines get a label in ``folder/../labels.jsonl``: the
    predicted intent with probability = confidence (a calibrated model), else another intent.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = list(INTENT_SHARES)
    shares = np.array(list(INTENT_SHARES.values()), float)
    shares /= shares.sum()
    bank = message_bank()
    text_json = {  # each bank text serialised once, as the writer would (ensure_ascii=False)
        i: [
            f'"text":{json.dumps(t, ensure_ascii=False)}'
            if privacy == "text"
            else f'"text_sha256":"{hashlib.sha256(t.encode()).hexdigest()}"'
            for t in ts
        ]
        for i, ts in bank.items()
    }
    t0 = np.datetime64(start, "us")
    offsets = np.sort(rng.integers(0, days * 86_400_000_000, n))  # microseconds, sorted
    label_path = folder.parent / "labels.jsonl"
    written = labelled = 0
    with label_path.open("w") as lab:
        for lo in range(0, n, CHUNK):
            m = min(CHUNK, n - lo)
            ts = np.datetime_as_string(t0 + offsets[lo : lo + m].astype("timedelta64[us]"))
            intent = rng.choice(len(labels), m, p=shares)
            # The truth of a wrong answer follows the mix too (not uniform), as real confusions
            # are mostly between common intents.
            other = rng.choice(len(labels), m, p=shares)
            other = np.where(other == intent, (intent + 1) % len(labels), other)
            conf = np.round(rng.beta(20, 1.2, m), 6)
            lat = np.round(rng.lognormal(np.log(8.0), 0.3, m), 3)
            queue = np.round(rng.exponential(0.8, m), 3)
            batch = rng.choice([1, 2, 4, 8], m)
            tokens = rng.poisson(9, m) + 3
            pick = rng.integers(0, 10**6, m)
            shadow = rng.random(m) < 0.05
            ambiguous = rng.random(m) < 0.01
            reason = np.where(conf < 0.5, 1, np.where(ambiguous, 2, 0))
            reasons = ("null", '"low_confidence"', '"ambiguous"')
            rows = []
            for j in range(m):
                i, r = labels[intent[j]], reason[j]
                texts = text_json[i]
                rid = f"r{lo + j:09d}"
                role = "shadow" if shadow[j] else "champion"
                rows.append(
                    f'{{"ts":"{ts[j]}+00:00","request_id":"{rid}","item":0,'
                    f'"model_version":"v14","latency_ms":{lat[j]},"queue_ms":{queue[j]},'
                    f'"batch":{batch[j]},"intent":"{i}","confidence":{conf[j]},'
                    f'"top_k":[["{i}",{conf[j]}],["{labels[other[j]]}",'
                    f'{round(1 - conf[j], 6)}]],"fallback":{"true" if r else "false"},'
                    f'"fallback_reason":{reasons[r]},"route":"{"clarify_or_fallback" if r else i}",'
                    f'"tokens":{tokens[j]},{texts[pick[j] % len(texts)]},"status":200,'
                    f'"role":"{role}"}}\n'
                )
            sample = np.flatnonzero((rng.random(m) < label_share) & ~shadow)
            correct = rng.random(len(sample)) < conf[sample]
            for j, ok in zip(sample, correct, strict=True):
                truth = labels[intent[j]] if ok else labels[other[j]]
                lab.write(f'{{"request_id":"r{lo + j:09d}","item":0,"label":"{truth}"}}\n')
            labelled += len(sample)
            _append_by_day(folder, ts, rows)
            written += m
    if torn and written:
        last = sorted(folder.glob("predictions-*.jsonl"))[-1]
        with last.open("a") as f:
            f.write('{"ts":"2026-12-1')  # a writer killed mid-line
    return {"lines": written, "labelled": labelled, "labels": str(label_path), "dir": str(folder)}


def _append_by_day(folder: Path, ts: np.ndarray, rows: list[str]) -> None:
    """Append each row to its UTC day's file (rows are sorted, so days are contiguous)."""
    days = np.array([t[:10].replace("-", "") for t in ts[[0, -1]]])
    if days[0] == days[1]:
        groups = {days[0]: rows}
    else:
        keys = np.char.replace(ts.astype("U10"), "-", "")
        groups = {}
        for d in np.unique(keys):
            idx = np.flatnonzero(keys == d)
            groups[d] = rows[idx[0] : idx[-1] + 1]
    for day, part in groups.items():
        with (folder / f"predictions-{day}.jsonl").open("a", encoding="utf-8") as f:
            f.writelines(part)
