"""Golden-set accuracy of a student against its teacher, paired, with the retention ratio.

    python experiments/model_selection/paired_golden.py TEACHER_RUN STUDENT_RUN [STUDENT_RUN ...]

Reads each run's ``eval/golden/predictions.jsonl`` (the same 550 messages, matched by id) and
prints, per student: both accuracies, the student/teacher ratio (the issue's ">= 99%" target),
the paired bootstrap interval of the accuracy difference and McNemar's exact test
(``mangaassist.evaluation.significance``). Shown, never used to choose a model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from mangaassist.evaluation.significance import mcnemar, paired_bootstrap


def _predictions(run: Path) -> dict[str, tuple[str, str]]:
    path = run / "eval" / "golden" / "predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["id"]: (r["label"], r["pred"]) for r in rows}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    teacher = _predictions(Path(argv[0]))
    labels = sorted({y for y, _ in teacher.values()})
    index = {name: i for i, name in enumerate(labels)}
    ids = sorted(teacher)
    y = np.array([index[teacher[i][0]] for i in ids])
    a = np.array([index.get(teacher[i][1], -1) for i in ids])
    for run in argv[1:]:
        student = _predictions(Path(run))
        if sorted(student) != ids:
            print(f"{run}: not the same golden messages as the teacher", file=sys.stderr)
            return 2
        b = np.array([index.get(student[i][1], -1) for i in ids])
        acc_a, acc_b = float((a == y).mean()), float((b == y).mean())
        diff = paired_bootstrap(y, b, a, len(labels), metric="acc", n_boot=2000)
        test = mcnemar(b == y, a == y)
        print(
            f"[PAIRED] student={Path(run).name} n={len(ids)} teacher_acc={100 * acc_a:.2f} "
            f"student_acc={100 * acc_b:.2f} retention={100 * acc_b / acc_a:.2f}% "
            f"diff={100 * diff['diff']:+.2f} ci=[{100 * diff['lo']:+.2f},{100 * diff['hi']:+.2f}] "
            f"mcnemar_p={test['p_value']:.3f} only_student_right={test['b']} "
            f"only_teacher_right={test['c']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
