"""Out-of-scope queries in a test file: scored by the fallback threshold, not by a label.

CLINC150's test split keeps its out-of-scope queries (label ``oos``,
:data:`mangaassist.data.sources.OOS`) although the model never learnt that label. A query is
*rejected* when its calibrated top-1 confidence is below the fallback threshold of its
predicted intent (the per-intent threshold of ``calibration.json``, never below the global
one): the threshold baseline of Larson et al. (2019). Figures (fractions):

==========================  ===============================================================
``oos_recall``              OOS queries rejected (sent to fallback)
``oos_false_accept_rate``   OOS queries routed to an intent (1 - ``oos_recall``)
``in_scope_acc``            in-scope queries predicted right (top-1, threshold ignored)
``in_scope_acc_accepted``   in-scope queries predicted right AND not sent to fallback
                            (the in-scope accuracy of the threshold baseline)
``in_scope_reject_rate``    in-scope queries sent to fallback
``oos_auroc``               threshold-free: how well confidence ranks in-scope above OOS
==========================  ===============================================================

Example:
    >>> import numpy as np
    >>> from mangaassist.evaluation.fallback import FallbackPolicy
    >>> p_in = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8]])
    >>> p_oos = np.array([[0.5, 0.5], [0.95, 0.05]])
    >>> m = score_out_of_scope(p_in, np.array([0, 0, 0]), p_oos, ["a", "b"], FallbackPolicy(0.6))
    >>> m["oos_recall"], round(m["in_scope_acc"], 3), round(m["in_scope_acc_accepted"], 3)
    (0.5, 0.667, 0.333)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mangaassist.atomic import write_json
from mangaassist.data.schema import Example
from mangaassist.evaluation.calibration import softmax
from mangaassist.evaluation.fallback import FallbackPolicy
from mangaassist.training.lines import percent

# Flat names that post_train adds to eval/summary.json and the run's metrics.json.
HEADLINE = (
    "oos_recall",
    "oos_false_accept_rate",
    "in_scope_acc",
    "in_scope_acc_accepted",
    "in_scope_reject_rate",
    "oos_auroc",
    "n_oos",
)


def score_out_of_scope(
    probs_in: np.ndarray,
    y_in: np.ndarray,
    probs_oos: np.ndarray,
    labels: Sequence[str],
    policy: FallbackPolicy,
) -> dict:
    """OOS recall, false acceptance and in-scope accuracy with and without the fallback.

    Args:
        probs_in: (N, C) calibrated probabilities of the in-scope queries.
        y_in: (N,) their true indices.
        probs_oos: (M, C) calibrated probabilities of the out-of-scope queries.
        labels: C names in index order.
        policy: the fallback thresholds (a query below its predicted intent's is rejected).
    """
    thresholds = policy.threshold_vector(labels)

    def rejected(probs: np.ndarray) -> np.ndarray:
        return probs.max(axis=1) < thresholds[probs.argmax(axis=1)]

    rej_in, rej_oos = rejected(probs_in), rejected(probs_oos)
    right = probs_in.argmax(axis=1) == y_in
    out = {
        "n_in_scope": len(y_in),
        "n_oos": len(probs_oos),
        "oos_recall": float(rej_oos.mean()) if len(probs_oos) else None,
        "oos_false_accept_rate": float((~rej_oos).mean()) if len(probs_oos) else None,
        "in_scope_acc": float(right.mean()) if len(y_in) else None,
        "in_scope_acc_accepted": float((right & ~rej_in).mean()) if len(y_in) else None,
        "in_scope_reject_rate": float(rej_in.mean()) if len(y_in) else None,
        "oos_auroc": None,
        "global_threshold": float(policy.global_threshold),
    }
    if len(y_in) and len(probs_oos):
        from sklearn.metrics import roc_auc_score

        conf = np.r_[probs_in.max(axis=1), probs_oos.max(axis=1)]
        is_in = np.r_[np.ones(len(y_in)), np.zeros(len(probs_oos))]
        out["oos_auroc"] = float(roc_auc_score(is_in, conf))
    return out


def evaluate_out_of_scope(run, oos: Sequence[Example], ev, top: int = 5) -> dict:
    """Score a run's out-of-scope examples beside an in-scope :class:`Evaluation` of it.

    The temperature and thresholds are the ones ``ev`` used (so the same as its report).

    Args:
        run: a loaded run (``predict_logits``, ``labels``).
        oos: the out-of-scope examples.
        ev: the evaluation of the in-scope examples of the same file.
        top: how many of the most confident accepted OOS queries to list.
    """
    m = ev.metrics
    labels = m["labels"]
    policy = FallbackPolicy(
        m["fallback"]["global_threshold"],
        m["fallback"]["margin"],
        {r["label"]: r["threshold"] for r in m["per_class"]},
    )
    probs = softmax(run.predict_logits([ex.text for ex in oos]), m["calibration"]["temperature"])
    out = score_out_of_scope(ev.probs_after, ev.y_true, probs, labels, policy)
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    accepted = np.flatnonzero(conf >= policy.threshold_vector(labels)[pred])
    worst = accepted[np.argsort(-conf[accepted], kind="stable")][:top]
    out["false_accepts"] = [
        {"text": oos[i].text, "pred": labels[pred[i]], "confidence": float(conf[i])} for i in worst
    ]
    return out


def oos_headline(m: dict | None, prefix: str) -> dict[str, float]:
    """Flat ``prefix/oos_recall``, ``prefix/in_scope_acc``, ... (empty for None)."""
    if not m:
        return {}
    return {f"{prefix}/{k}": float(m[k]) for k in HEADLINE if m.get(k) is not None}


def oos_log_line(m: dict, name: str = "test") -> str:
    """The ``[EVAL] set=test oos_recall=...`` line, rates in percent."""
    auroc = "na" if m["oos_auroc"] is None else f"{m['oos_auroc']:.3f}"
    return (
        f"[EVAL] set={name} n_in_scope={m['n_in_scope']} n_oos={m['n_oos']} "
        f"oos_recall={percent(m['oos_recall'])} "
        f"oos_false_accept={percent(m['oos_false_accept_rate'])} "
        f"in_scope_acc={percent(m['in_scope_acc'])} "
        f"in_scope_acc_accepted={percent(m['in_scope_acc_accepted'])} "
        f"in_scope_reject={percent(m['in_scope_reject_rate'])} oos_auroc={auroc}"
    )


def merge_run_metrics(run_dir: Path, flat: dict[str, float]) -> None:
    """Add ``flat`` to the run's ``metrics.json`` (nothing when empty or the file is absent)."""
    path = Path(run_dir) / "metrics.json"
    if not flat or not path.is_file():
        return
    data = json.loads(path.read_text())
    write_json(path, data | flat, sort_keys=True)
