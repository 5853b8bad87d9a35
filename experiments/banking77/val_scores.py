"""Validation accuracy and macro F1 of finished runs, fp32, and raw weights vs their EMA.

A run trained with ``averaging=ema`` holds both weight sets from one training trajectory (the
average in ``state_dict``, the raw weights in ``current_model_state``), so the difference
between the two lines is the averaging alone, on the same messages (a paired comparison).
Other runs print one (raw) line, scored the same way, to compare recipes on one validation
split (runs of one seed share it). The first run given for a validation split is that split's
baseline: each later run on the same messages also prints how many it gets right that the
baseline gets wrong and the reverse (the paired view; the accuracy gap is their difference).
With ``--ensemble``, each validation split also gets the accuracy of the mean softmax of its
trained runs (a weight soup, which has a ``soup.json``, is left out of that mean): whether the
runs' errors are independent enough for averaging of any kind to help.

    python experiments/banking77/val_scores.py [--ensemble] outputs/<run> [outputs/<run> ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score

from mangaassist.checkpoint import load_checkpoint
from mangaassist.evaluation.artifacts import read_labelled
from mangaassist.training import load_run


def main(run_dirs: list[str], ensemble: bool = False) -> None:
    baselines: dict[tuple[str, ...], tuple[str, np.ndarray]] = {}  # val texts -> (run, preds)
    members: dict[tuple[str, ...], tuple[np.ndarray, list[np.ndarray]]] = {}  # -> (gold, probs)
    for name in run_dirs:
        run_dir = Path(name)
        run = load_run(run_dir)  # fp32, the checkpoint's state_dict (the average, if any)
        examples = read_labelled(run_dir / "data/val.jsonl", run.labels)
        gold = np.array([run.labels.index(e.label) for e in examples])
        texts = [e.text for e in examples]
        ckpt = load_checkpoint(run_dir / "checkpoints/best.ckpt")
        averaged = "current_model_state" in ckpt
        logits = run.predict_logits(texts)  # (N, C)
        preds = {"ema" if averaged else "raw": logits.argmax(1)}
        if not (run_dir / "soup.json").is_file():
            members.setdefault(tuple(texts), (gold, []))[1].append(
                torch.from_numpy(logits).softmax(-1).numpy()
            )
        if averaged:  # the same model with the raw weights of the same trajectory
            run.model.load_state_dict(ckpt["current_model_state"], strict=False)
            preds = {"raw": run.predict_logits(texts).argmax(1), **preds}
        for what, pred in preds.items():
            acc = 100 * accuracy_score(gold, pred)
            f1 = 100 * f1_score(gold, pred, average="macro")
            print(f"{run_dir.name} {what}: val acc {acc:.2f} macro F1 {f1:.2f} (n={len(gold)})")
        if averaged:
            raw, ema = preds["raw"], preds["ema"]
            only_ema = int(((ema == gold) & (raw != gold)).sum())
            only_raw = int(((raw == gold) & (ema != gold)).sum())
            print(f"{run_dir.name} right only with ema: {only_ema}, only raw: {only_raw}")
        pred = preds["raw"]
        if tuple(texts) not in baselines:
            baselines[tuple(texts)] = (run_dir.name, pred)
            continue
        base_name, base = baselines[tuple(texts)]
        only_here = int(((pred == gold) & (base != gold)).sum())
        only_base = int(((base == gold) & (pred != gold)).sum())
        print(f"{run_dir.name} right only here: {only_here}, only in {base_name}: {only_base}")
    for gold, probs in members.values() if ensemble else ():
        acc = 100 * accuracy_score(gold, np.mean(probs, axis=0).argmax(1))
        print(f"ensemble of {len(probs)} (mean softmax): val acc {acc:.2f} (n={len(gold)})")


if __name__ == "__main__":
    args = sys.argv[1:]
    main([a for a in args if a != "--ensemble"], ensemble="--ensemble" in args)
