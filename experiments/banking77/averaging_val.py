"""Raw weights vs their EMA, on the validation split of a run trained with EMAWeights.

The checkpoint of such a run holds both weight sets from one training trajectory (the average
in ``state_dict``, the raw weights in ``current_model_state``), so the difference between the
two lines is the averaging alone, on the same messages (a paired comparison).

    python experiments/banking77/averaging_val.py outputs/<run> [outputs/<run> ...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score

from mangaassist.evaluation.artifacts import read_labelled
from mangaassist.training import load_run


def score(run_dir: Path, key: str) -> np.ndarray:
    """Predicted label ids on ``data/val.jsonl`` with the checkpoint's ``key`` weights."""
    ckpt = torch.load(run_dir / "checkpoints/best.ckpt", map_location="cpu", weights_only=False)
    with tempfile.TemporaryDirectory(dir=run_dir / "checkpoints") as tmp:
        path = Path(tmp) / "weights.ckpt"
        torch.save({"state_dict": ckpt[key]}, path)
        run = load_run(run_dir, checkpoint=str(path.relative_to(run_dir)))
    examples = read_labelled(run_dir / "data/val.jsonl", run.labels)
    return run.predict_logits([e.text for e in examples]).argmax(1)


def main(run_dirs: list[str]) -> None:
    for name in run_dirs:
        run_dir = Path(name)
        run = load_run(run_dir)
        examples = read_labelled(run_dir / "data/val.jsonl", run.labels)
        gold = np.array([run.labels.index(e.label) for e in examples])
        raw, ema = score(run_dir, "current_model_state"), score(run_dir, "state_dict")
        for what, pred in (("raw", raw), ("ema", ema)):
            acc = 100 * accuracy_score(gold, pred)
            f1 = 100 * f1_score(gold, pred, average="macro")
            print(f"{run_dir.name} {what}: val acc {acc:.2f} macro F1 {f1:.2f} (n={len(gold)})")
        only_ema = int(((ema == gold) & (raw != gold)).sum())
        only_raw = int(((raw == gold) & (ema != gold)).sum())
        print(f"{run_dir.name} right only with ema: {only_ema}, only raw: {only_raw}")


if __name__ == "__main__":
    main(sys.argv[1:])
