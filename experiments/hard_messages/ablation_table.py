"""The lever ablation's table (ABLATION.md): every row on one validation file, plus golden.

    .venv/bin/python experiments/hard_messages/ablation_table.py outputs/hard_messages \
        --val outputs/hard_messages/banks/data/val.jsonl --out experiments/hard_messages

Rows are the run folders that ``run_ablation.sh`` trained (base, banks, romaji, head_tail,
secondary, secondary_w5, vocab; missing ones are skipped). The rows do not all share one
corpus (``base`` is trained on the corpus before the Japanese banks), so each is scored on a
common validation file: the ``--val`` split minus every message (by the dedup key) that any
row trained on. That file picks the levers (argmax accuracy with its 95% Wilson interval,
macro F1, slices); the golden figures come from each run's post-training evaluation
(``eval/golden/metrics.json``, bootstrap interval), shown beside it, not used to choose.
Writes ``ablation.json`` and ``ablation.md`` (the table) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mangaassist.atomic import file_sha256, write_json, write_text
from mangaassist.data.normalize import dedup_key

ROWS = {  # folder: the lever it adds (run_ablation.sh holds the commands)
    "base": "none (corpus before the Japanese banks)",
    "banks": "+ Japanese, romaji and contrast banks",
    "romaji": "+ text_preprocess=romaji",
    "head_tail": "+ truncation=head_tail (romaji row +)",
    "secondary": "+ secondary.weight=0.5 (romaji row +)",
    "secondary_w5": "+ secondary.weight=5 (romaji row +)",
    "vocab": "+ vocab_extension.size=1000 (banks row +, no romaji)",
}
# The lever settings a run trained with, read from its config.yaml (a run from before a lever
# has no key: that lever's off value).
LEVERS = {
    "data.module.text_preprocess": "none",
    "data.module.truncation": "first",
    "secondary.weight": 0.0,
    "vocab_extension.size": 0,
}
SCRIPT_COLS = ("latin", "romaji", "japanese", "mixed")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def common_val(val: Path, runs: list[Path], out: Path) -> tuple[Path, int, int]:
    """``val`` minus any message a row trained on; returns (file, kept, dropped)."""
    seen: set[str] = set()
    for run in runs:
        seen |= {dedup_key(r["text"]) for r in _rows(run / "data" / "train.jsonl")}
    rows = _rows(val)
    kept = [r for r in rows if dedup_key(r["text"]) not in seen]
    write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    return out, len(kept), len(rows) - len(kept)


def score(run: Path, data: Path) -> dict:
    """Argmax accuracy, macro F1 and the script/length slices of the run on ``data``.

    Cached in ``<run>/eval/val_common-<sha>.json`` (the common file changes when a row is
    added, and then so does the name). No calibration, report or bootstrap: the temperature
    does not move the argmax, and the table needs only these figures.
    """
    out = run / "eval" / f"val_common-{file_sha256(data)[:10]}.json"
    if out.is_file():
        return json.loads(out.read_text(encoding="utf-8"))
    from sklearn.metrics import f1_score

    from mangaassist.evaluation.slices import slice_metrics, wilson_interval
    from mangaassist.training.run_dir import load_run

    loaded = load_run(run)
    labels = list(loaded.labels)
    rows = _rows(data)
    texts = [r["text"] for r in rows]
    truth = [labels.index(r["label"]) for r in rows]
    pred = loaded.predict_logits(texts).argmax(1).tolist()
    k = sum(t == p for t, p in zip(truth, pred, strict=True))
    lo, hi = wilson_interval(k, len(rows))
    m = {
        "n": len(rows),
        "acc": k / len(rows),
        "ci": {"acc": {"lo": lo, "hi": hi}},
        "macro_f1": float(f1_score(truth, pred, average="macro")),
        "slices": slice_metrics(truth, pred, texts, None, labels),
    }
    write_json(out, m)
    return m


def levers(run: Path) -> dict:
    """The run's lever settings (:data:`LEVERS`), as its config.yaml has them."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(run / "config.yaml")
    return {key: OmegaConf.select(cfg, key, default=off) for key, off in LEVERS.items()}


def _slice(m: dict, kind: str, name: str) -> str:
    row = next((r for r in m.get("slices", {}).get(kind, []) if r["slice"] == name), None)
    if not row or not row["n"]:
        return "–"
    return f"{100 * row['acc']:.1f} (n={row['n']})"


def _acc(m: dict) -> str:
    ci = m.get("ci", {}).get("acc")
    interval = f" ({100 * ci['lo']:.1f}-{100 * ci['hi']:.1f})" if ci else ""
    return f"{100 * m['acc']:.1f}{interval}"


def _secondary(m: dict) -> str:
    s = m.get("secondary")
    if not s:
        return "–"
    p, r = s.get("precision"), s.get("recall")
    cell = "/".join("na" if v is None else f"{100 * v:.1f}" for v in (p, r))
    return f"{cell} (n={s.get('n_multi')})"


def table(rows: list[tuple[str, dict, dict]]) -> str:
    head = ["row", "lever"] + [f"val {c}" for c in ("acc", "macro F1", *SCRIPT_COLS, "long")]
    head += ["golden acc (95% CI)", "golden japanese", "golden romaji", "golden long"]
    head += ["golden secondary P/R (multi-ask)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, val, gold in rows:
        cells = [f"`{name}`", ROWS[name], _acc(val), f"{100 * val['macro_f1']:.1f}"]
        cells += [_slice(val, "script", c) for c in SCRIPT_COLS] + [_slice(val, "length", "long")]
        cells += [_acc(gold), _slice(gold, "script", "japanese"), _slice(gold, "script", "romaji")]
        cells += [_slice(gold, "length", "long"), _secondary(gold)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path, help="run_ablation.sh's OUT folder")
    p.add_argument("--val", type=Path, required=True, help="the validation split to share")
    p.add_argument("--out", type=Path, required=True, help="where ablation.md/json go")
    args = p.parse_args(argv)
    runs = [args.root / n for n in ROWS if (args.root / n / "metrics.json").is_file()]
    if not runs:
        sys.exit(f"no finished row under {args.root}: run run_ablation.sh first")
    val, kept, dropped = common_val(args.val, runs, args.root / "val_common.jsonl")
    print(f"[ABLATION] common validation: {kept} messages ({dropped} dropped: seen in training)")
    rows = []
    for run in runs:
        gold_path = run / "eval" / "golden" / "metrics.json"
        gold = json.loads(gold_path.read_text(encoding="utf-8"))
        rows.append((run.name, score(run, val), gold))
    md = table(rows)
    print(md)
    write_text(args.out / "ablation.md", md)
    keep = ("acc", "macro_f1", "rare_recall", "ci", "slices", "secondary", "n")
    write_json(
        args.out / "ablation.json",
        {
            "val": str(args.val),
            "common_val": {"kept": kept, "dropped_seen_in_training": dropped},
            "rows": {
                name: {
                    "lever": ROWS[name],
                    "settings": levers(args.root / name),
                    "val": {k: v[k] for k in keep if k in v},
                    "golden": {k: g[k] for k in keep if k in g},
                }
                for name, v, g in rows
            },
        },
        indent=1,
    )


if __name__ == "__main__":
    main()
