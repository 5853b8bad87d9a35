"""Live accuracy: a label-free estimate for every window, and a labelled sample where one exists.

**Label-free (``est_acc``)**: the mean top-1 calibrated probability of the window, the
confidence-based performance estimate of NannyML's CBPE. If the model is calibrated (its
``softmax(z / T)`` top-1 probability is the chance the top-1 is right), the expected accuracy
of any set of messages is the mean of those probabilities, no labels needed. Caveats: it holds
only while calibration holds, i.e. under covariate shift with P(intent | message) unchanged
(more Japanese, a sale week); it is blind to concept shift (the same words now meaning another
intent) and to new intents, where a model can be confidently wrong; and it needs the
temperature fitted on a held-out set, not the training set (the export's ``calibration.json``
is fitted on validation). Read it beside the sampled figures, never instead of them.

**Sampled (``sampled_acc``, ``rare_recall``)**: ``--labels SAMPLE.jsonl`` (``request_id``,
optional ``item`` (0), ``label``; :func:`read_labels` checks labels against the reference's
label set, not the MangaAssist taxonomy, so any trained label set can be monitored) joined
with the log on (request id, item). ``sampled_acc`` = top-1 correct / labelled;
``rare_recall`` = correct / labelled among messages whose true label is rare (pooled over the
rare classes, so it has one binomial interval; the training report's ``rare_recall`` is the
mean of per-class recalls, which agrees when the rare classes are sampled alike). Both come
with 95% Wilson intervals and are ``None`` below ``min_labels`` labels in the window; per
intent, recall where at least ``per_intent_min_labels`` labels exist.

Example:
    >>> w = wilson(90, 100)
    >>> round(w["acc"], 2), round(w["lo"], 4), round(w["hi"], 4)
    (0.9, 0.8256, 0.9448)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from mangaassist.monitor.windows import ANSWERED, iso
from mangaassist.serve.predlog import read_label_sample

Z95 = 1.959964


def wilson(k: int, n: int, z: float = Z95) -> dict[str, float | int | None]:
    """Proportion ``k / n`` with its Wilson score interval: sound at small n and at 0 or 1."""
    if n == 0:
        return {"acc": None, "lo": None, "hi": None, "k": 0, "n": 0}
    p = k / n
    mid = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    d = 1 + z * z / n
    lo, hi = max(0.0, (mid - half) / d), min(1.0, (mid + half) / d)
    return {"acc": p, "lo": round(lo, 6), "hi": round(hi, 6), "k": k, "n": n}


def read_labels(path: str | Path, known: Sequence[str]) -> dict[tuple[str, int], str]:
    """The labelled sample (:func:`mangaassist.serve.predlog.read_label_sample`)."""
    return read_label_sample(path, known)


def register_labels(con: duckdb.DuckDBPyConnection, labels: Mapping[tuple[str, int], str]) -> int:
    """Table ``labels(request_id, item, label)``; returns how many log lines it matches."""
    import pandas as pd  # only with --labels: DuckDB scans the frame without a copy

    frame = pd.DataFrame(
        [(rid, item, label) for (rid, item), label in labels.items()],
        columns=["request_id", "item", "label"],
    )
    con.register("labels_frame", frame)
    con.execute(
        "CREATE OR REPLACE TABLE labels AS SELECT request_id, item::INTEGER AS item, label "
        "FROM labels_frame"
    )
    con.unregister("labels_frame")
    return con.execute(
        "SELECT count(*) FROM champ c JOIN labels l USING (request_id, item)"
    ).fetchone()[0]


def sampled_accuracy(
    con: duckdb.DuckDBPyConnection,
    widths: Mapping[str, int],
    rare: list[str],
    *,
    min_labels: int,
    per_intent_min: int,
) -> dict[tuple[str, str], dict[str, Any]]:
    """(window kind, start) -> sampled signals and per-intent recall, from table ``labels``."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, seconds in widths.items():
        rows = con.execute(
            f"""SELECT time_bucket(to_seconds($s), c.ts) AS b, l.label, count(*) AS n,
                       count(*) FILTER (WHERE c.intent = l.label) AS ok
                FROM champ c JOIN labels l USING (request_id, item)
                WHERE {ANSWERED}
                GROUP BY ALL""",
            {"s": seconds},
        ).fetchall()
        per: dict[str, dict[str, tuple[int, int]]] = {}
        for b, label, n, ok in rows:
            per.setdefault(iso(b), {})[label] = (int(ok), int(n))
        for start, by_label in per.items():
            out[(kind, start)] = _signals(by_label, rare, min_labels, per_intent_min)
    return out


def _signals(
    by_label: Mapping[str, tuple[int, int]], rare: list[str], min_labels: int, per_intent_min: int
) -> dict[str, Any]:
    k = sum(ok for ok, _ in by_label.values())
    n = sum(m for _, m in by_label.values())
    rk = sum(ok for lab, (ok, _) in by_label.items() if lab in rare)
    rn = sum(m for lab, (_, m) in by_label.items() if lab in rare)
    acc, rec = wilson(k, n), wilson(rk, rn)
    enough, rare_enough = n >= min_labels, rn >= min_labels
    return {
        "sampled_n": n,
        "sampled_acc": acc["acc"] if enough else None,
        "sampled_acc_lo": acc["lo"] if enough else None,
        "sampled_acc_hi": acc["hi"] if enough else None,
        "rare_n": rn,
        "rare_recall": rec["acc"] if rare_enough else None,
        "rare_recall_lo": rec["lo"] if rare_enough else None,
        "rare_recall_hi": rec["hi"] if rare_enough else None,
        "per_intent": {
            lab: wilson(ok, m) for lab, (ok, m) in sorted(by_label.items()) if m >= per_intent_min
        },
    }
