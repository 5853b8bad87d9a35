"""Secondary intents of multi-ask messages: the second head's threshold and its metrics.

A model trained with ``secondary.weight > 0`` has a multi-label head: ``sigmoid(z_c)`` per
intent ``c``. An intent is predicted secondary when its probability reaches the threshold
and (``mask_primary``, the default) it is not the predicted primary intent. The true set is
an example's ``secondary_intents`` without its own label. Per set of messages:

- on the messages with at least one true secondary intent (``n_multi``): micro precision
  and recall over their (message, intent) pairs, and the exact set match (predicted set ==
  true set);
- on all messages: micro precision and recall, so false secondaries on single-ask messages
  count, their F1 (what the threshold maximises), and ``false_single_rate``, the share of
  single-ask messages given any secondary intent.

The threshold is chosen on the validation split only (:func:`choose_threshold`, inside
:func:`fit_policy`), stored in the run as ``secondary.json`` (:class:`SecondaryPolicy`) and
applied unchanged to test and the golden set. The functions here need numpy only.

Example (two messages, three intents; the first asks two things, the second one):
    >>> true = np.array([[0, 1, 1], [0, 0, 0]], dtype=bool)
    >>> pred = np.array([[0, 1, 0], [1, 0, 0]], dtype=bool)
    >>> m = secondary_metrics(true, pred)
    >>> m["precision"], m["recall"], m["exact_match"], m["precision_all"], m["n_multi"]
    (1.0, 0.5, 0.0, 0.5, 1)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mangaassist.atomic import write_json
from mangaassist.errors import UserError
from mangaassist.inference.policy import sigmoid  # the one the server applies
from mangaassist.training.lines import percent

SECONDARY_FILE = "secondary.json"
DEFAULT_THRESHOLD = 0.5  # when validation cannot choose one (no multi-ask message in it)
GRID = tuple(round(0.01 * k, 2) for k in range(1, 100))  # thresholds tried: 0.01 ... 0.99
CRITERION = "max micro F1 over all validation messages; centre of the first best plateau"


def true_matrix(
    secondary: Sequence[Sequence[str]], primary: Sequence[str], labels: Sequence[str]
) -> np.ndarray:
    """(N, C) bool: ``[i, c]`` when intent ``c`` is a secondary intent of message ``i``.

    Args:
        secondary: each message's ``secondary_intents``.
        primary: each message's label; never counted as its own secondary intent.
        labels: the C intents in index order.

    Raises:
        UserError: a secondary intent that is not one of ``labels``.
    """
    index = {label: i for i, label in enumerate(labels)}
    out = np.zeros((len(primary), len(labels)), dtype=bool)
    for row, (names, own) in enumerate(zip(secondary, primary, strict=True)):
        for name in names:
            if name not in index:
                raise UserError(
                    f"secondary intent '{name}' of message {row} is not one of the model's "
                    f"labels {list(labels)}; fix the example's secondary_intents"
                )
            if name != own:
                out[row, index[name]] = True
    return out


def predict_matrix(
    probs: np.ndarray, threshold: float, primary_pred: np.ndarray | None = None
) -> np.ndarray:
    """(N, C) bool: ``probs >= threshold``, minus each row's ``primary_pred`` when given.

    Args:
        probs: (N, C) secondary probabilities ``sigmoid(z)``.
        threshold: in (0, 1).
        primary_pred: (N,) predicted primary indices to mask out, or None (no mask).
    """
    pred = np.asarray(probs) >= threshold
    if primary_pred is not None:
        pred[np.arange(len(pred)), np.asarray(primary_pred, dtype=np.int64)] = False
    return pred


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def secondary_metrics(true: np.ndarray, pred: np.ndarray) -> dict:
    """Precision, recall and exact match of predicted secondary sets (module docstring).

    Args:
        true: (N, C) bool true secondary intents.
        pred: (N, C) bool predicted secondary intents.

    Returns:
        JSON-ready figures; a ratio with nothing to divide by is None (e.g. precision when
        nothing was predicted).
    """
    true, pred = np.asarray(true, dtype=bool), np.asarray(pred, dtype=bool)
    if true.shape != pred.shape:
        raise ValueError(f"true {true.shape} and predicted {pred.shape} sets differ in shape")
    multi = true.any(axis=1)  # (N,) messages that ask more than one thing
    hit = true & pred
    tp_multi, pred_multi = int(hit[multi].sum()), int(pred[multi].sum())
    n_true, n_pred, tp = int(true.sum()), int(pred.sum()), int(hit.sum())
    p_all, r_all = _ratio(tp, n_pred), _ratio(tp, n_true)
    f1 = None if p_all is None or r_all is None else _ratio(2 * tp, n_pred + n_true)
    single = ~multi
    return {
        "n": len(true),
        "n_multi": int(multi.sum()),
        "n_single": int(single.sum()),
        "precision": _ratio(tp_multi, pred_multi),
        "recall": _ratio(tp_multi, n_true),
        "exact_match": _ratio(int((true == pred).all(axis=1)[multi].sum()), int(multi.sum())),
        "precision_all": p_all,
        "recall_all": r_all,
        "f1_all": f1,
        "false_single_rate": _ratio(int(pred[single].any(axis=1).sum()), int(single.sum())),
        "true_pairs": n_true,
        "predicted_pairs": n_pred,
        "correct_pairs": tp,
    }


def choose_threshold(
    true: np.ndarray,
    probs: np.ndarray,
    primary_pred: np.ndarray | None = None,
    grid: Sequence[float] = GRID,
) -> tuple[float, float]:
    """The threshold with the best micro F1 over all messages, and that F1.

    Among equal best F1s (a plateau), the centre of the first plateau (the lower of the two
    middle points for an even count), so the threshold is not at the edge where one
    validation score decides.

    Args:
        true: (N, C) bool true secondary intents of the validation messages.
        probs: (N, C) their secondary probabilities.
        primary_pred: (N,) predicted primary indices, masked as when serving; None: no mask.
        grid: thresholds to try, ascending.

    Raises:
        ValueError: no message has a true secondary intent (nothing to choose by).

    Example:
        >>> true = np.array([[1, 0], [0, 0]], dtype=bool)
        >>> probs = np.array([[0.8, 0.3], [0.1, 0.2]])
        >>> choose_threshold(true, probs, grid=[0.1, 0.25, 0.5, 0.75, 0.9])  # F1 1 on (0.3, 0.8]
        (0.5, 1.0)
    """
    if not np.asarray(true).any():
        raise ValueError("no message has a secondary intent: no threshold can be chosen")
    f1 = np.array(
        [
            secondary_metrics(true, predict_matrix(probs, t, primary_pred))["f1_all"] or 0.0
            for t in grid
        ]
    )
    best = float(f1.max())
    start = int(np.argmax(f1 >= best - 1e-12))
    end = start
    while end + 1 < len(f1) and f1[end + 1] >= best - 1e-12:
        end += 1
    return float(grid[(start + end) // 2]), best


@dataclass(frozen=True)
class SecondaryPolicy:
    """How secondary intents are predicted: what ``secondary.json`` holds.

    Attributes:
        threshold: an intent is secondary when ``sigmoid(z) >= threshold``.
        mask_primary: the predicted primary intent is never also secondary.
        chosen_on: where the threshold came from (``data/val.jsonl``, ``config``, ``default``).
        criterion: how it was chosen.
        val: the validation figures at that threshold (empty without a validation split).
    """

    threshold: float
    mask_primary: bool = True
    chosen_on: str = ""
    criterion: str = CRITERION
    val: dict = field(default_factory=dict)

    def predict(self, logits: np.ndarray, primary_pred: np.ndarray) -> np.ndarray:
        """(N, C) bool predicted secondary intents from (N, C) secondary logits."""
        mask = primary_pred if self.mask_primary else None
        return predict_matrix(sigmoid(logits), self.threshold, mask)

    def save(self, path: str | Path) -> None:
        write_json(Path(path), asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> SecondaryPolicy:
        """Read ``secondary.json``; a malformed file is a UserError naming it."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(**raw)
        except (OSError, ValueError, TypeError) as err:
            raise UserError(
                f"{path}: not a secondary-intent policy ({err}); rewrite it with "
                f"mangaassist post-train {path.parent}"
            ) from err


def fit_policy(run, val_path: Path | None, settings: Mapping | None = None) -> SecondaryPolicy:
    """Choose the threshold on the validation file (or take the configured one).

    Args:
        run: a loaded run with the secondary head (``predict_heads``, ``labels``, ``path``).
        val_path: the run's ``data/val.jsonl``; None or absent: no search, the configured
            threshold or :data:`DEFAULT_THRESHOLD`.
        settings: the run's ``secondary`` config (``threshold``, ``mask_primary``).
    """
    from mangaassist.evaluation.artifacts import read_labelled

    s = dict(settings or {})
    fixed, mask = s.get("threshold"), bool(s.get("mask_primary", True))
    if val_path is None or not Path(val_path).is_file():
        threshold = DEFAULT_THRESHOLD if fixed is None else float(fixed)
        where = "default (no validation split)" if fixed is None else "config"
        return SecondaryPolicy(threshold, mask, chosen_on=where)
    examples = read_labelled(val_path, run.labels, run.path)
    logits, sec = run.predict_heads([ex.text for ex in examples])
    primary_pred = logits.argmax(axis=1)
    true = true_matrix(
        [ex.secondary_intents for ex in examples], [ex.label for ex in examples], run.labels
    )
    shown = str(val_path.relative_to(run.path) if val_path.is_relative_to(run.path) else val_path)
    if fixed is not None:
        threshold, where = float(fixed), "config"
    elif true.any():
        threshold = choose_threshold(true, sigmoid(sec), primary_pred if mask else None)[0]
        where = shown
    else:
        threshold, where = DEFAULT_THRESHOLD, f"default (no multi-ask message in {shown})"
    policy = SecondaryPolicy(threshold, mask, chosen_on=where)
    val = secondary_metrics(true, policy.predict(sec, primary_pred))
    return SecondaryPolicy(threshold, mask, chosen_on=where, val=val)


def evaluate_secondary(
    secondary_logits: np.ndarray,
    primary_pred: np.ndarray,
    examples: Sequence,
    labels: Sequence[str],
    policy: SecondaryPolicy,
) -> tuple[dict, list[list[str]]]:
    """Figures of one labelled set, and each message's predicted secondary intents.

    Args:
        secondary_logits: (N, C) the secondary head's logits.
        primary_pred: (N,) predicted primary indices.
        examples: the N :class:`~mangaassist.data.schema.Example` objects scored.
        labels: the C intents in index order.
        policy: the run's threshold and mask.
    """
    true = true_matrix(
        [ex.secondary_intents for ex in examples], [ex.label for ex in examples], labels
    )
    pred = policy.predict(secondary_logits, primary_pred)
    m = secondary_metrics(true, pred)
    m |= {
        "threshold": policy.threshold,
        "mask_primary": policy.mask_primary,
        "chosen_on": policy.chosen_on,
    }
    names = [[labels[c] for c in np.flatnonzero(row)] for row in pred]
    return m, names


def log_line(m: dict, name: str) -> str:
    """The one-line ``[EVAL_SECONDARY] set=... precision=.. recall=..`` record (percent)."""
    return (
        f"[EVAL_SECONDARY] set={name} precision={percent(m['precision'])} "
        f"recall={percent(m['recall'])} exact_match={percent(m['exact_match'])} "
        f"n_multi={m['n_multi']} precision_all={percent(m['precision_all'])} "
        f"recall_all={percent(m['recall_all'])} false_single={percent(m['false_single_rate'])}% "
        f"threshold={m['threshold']:.2f}"
    )


def headline(m: dict | None, prefix: str) -> dict[str, float]:
    """Flat ``<prefix>/secondary_<figure>`` values for summary.json (None figures left out)."""
    if not m:
        return {}
    keys = ("precision", "recall", "exact_match", "precision_all", "recall_all", "f1_all")
    flat = {f"{prefix}/secondary_{k}": m[k] for k in keys} | {
        f"{prefix}/secondary_false_single_rate": m["false_single_rate"],
        f"{prefix}/secondary_n_multi": m["n_multi"],
    }
    return {k: float(v) for k, v in flat.items() if v is not None}
