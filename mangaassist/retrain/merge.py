"""Merge labelled messages into the training data: deduplicated, protected sets kept out.

Messages are compared by :func:`~mangaassist.data.normalize.dedup_key`, the key the gate set's
overlap check uses, so a message that differs only in case, punctuation or spacing is the same
message here. Every copy of a message is dropped, with its reason, when it is in (first match
wins, in this order):

1. ``in_test``, ``in_golden``, ``in_gate_set``: a held-out set. Training on it would make
   the test figures, the golden floors or the gate's comparison look better than they are;
2. ``in_val``: the validation split picks the checkpoint and fits the temperature;
3. ``in_train``: already a training message (its existing label stands; ``disagrees`` counts
   those the labellers labelled otherwise, a sign of label noise worth a look);
4. ``conflicting_labels``: the labellers gave one message two labels: neither is trusted;

and otherwise the first copy is added and the rest are ``duplicate_in_labels``.

The merged training file is the champion's training examples, unchanged and in order, then the
added ones. Its **data version** is the sha256 of its bytes: the same figure the registry
records for a version's ``data/train.jsonl``, so every model's data version can be checked, and
a retrained one names its parent's.

Example:
    >>> from mangaassist.data.schema import Example
    >>> new = [Example("Where is my ORDER?", "order_tracking"),
    ...        Example("refund pls", "return_request"), Example("refund pls!", "return_request"),
    ...        Example("hi", "chitchat")]
    >>> m = merge_labels(new, ["l1", "l2", "l3", "l4"], [Example("hi there", "chitchat")],
    ...                  {"test": {"where is my order"}})
    >>> [e.text for e in m.added], m.counts
    (['refund pls', 'hi'], {'in_test': 1, 'duplicate_in_labels': 1})
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mangaassist.atomic import file_sha256, write_json, write_text
from mangaassist.data.normalize import dedup_key
from mangaassist.data.schema import Example, write_examples

PROTECTED = ("test", "golden", "gate_set")  # held out: never trained on
REASONS = (
    "in_test",
    "in_golden",
    "in_gate_set",
    "in_val",
    "in_train",
    "conflicting_labels",
    "duplicate_in_labels",
)
FOLDER = "retrain"  # inside the candidate's run directory
VERSION_FILE = "data_version.json"


@dataclass
class MergeResult:
    """The merged training examples, what was added, and each dropped row with its reason."""

    train: list[Example]
    added: list[Example] = field(default_factory=list)
    dropped: list[dict[str, str]] = field(default_factory=list)
    disagrees: int = 0  # in_train rows whose label differs from the training one

    @property
    def counts(self) -> dict[str, int]:
        """Dropped rows per reason, in :data:`REASONS` order (reasons with none left out)."""
        c = Counter(d["reason"] for d in self.dropped)
        return {r: c[r] for r in REASONS if c[r]}


def merge_labels(
    new: Sequence[Example],
    where: Sequence[str],
    base_train: Sequence[Example],
    protected: Mapping[str, set[str]],
) -> MergeResult:
    """Add ``new`` to ``base_train`` under the rules of the module docstring.

    Args:
        new: the labelled examples, in file order.
        where: ``FILE:LINE`` of each, for the dropped list.
        base_train: the champion's training examples (kept as they are).
        protected: dedup keys of ``test``, ``golden``, ``gate_set`` and ``val`` (any missing
            name: that set is empty).
    """
    train_keys = {dedup_key(e.text): e.label for e in base_train}
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(new):
        groups.setdefault(dedup_key(ex.text), []).append(i)
    result = MergeResult(train=list(base_train))
    for key, rows in groups.items():
        labels = {new[i].label for i in rows}
        reason, detail = None, ""
        for name in (*PROTECTED, "val"):
            if key in protected.get(name, ()):
                reason = f"in_{name}"
                break
        if reason is None and key in train_keys:
            reason, detail = "in_train", f"train label {train_keys[key]}"
            result.disagrees += sum(new[i].label != train_keys[key] for i in rows)
        if reason is None and len(labels) > 1:
            reason, detail = "conflicting_labels", f"labelled {', '.join(sorted(labels))}"
        if reason is None:
            result.added.append(new[rows[0]])
            reason, detail, rows = "duplicate_in_labels", f"same as {where[rows[0]]}", rows[1:]
        for i in rows:
            d = {"text": new[i].text, "label": new[i].label, "where": where[i], "reason": reason}
            result.dropped.append({**d, "detail": detail} if detail else d)
    result.train += result.added
    return result


def write_merge(
    folder: str | Path,
    result: MergeResult,
    *,
    parent: Mapping[str, Any],
    labels_file: Mapping[str, Any],
    protected: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Write ``train.jsonl``, ``added.jsonl``, ``dropped.jsonl`` and ``data_version.json``.

    Each file is written atomically, the record last: a folder with ``data_version.json`` holds
    the complete data it describes.

    Args:
        folder: usually ``RUN/retrain``.
        parent: the champion: ``model`` (its name) and ``train_file``.
        labels_file: ``path``, ``sha256``, ``rows``, ``unlabelled``.
        protected: per held-out set, ``file`` and ``n`` (messages), for the record.

    Returns:
        The record written to ``data_version.json``.
    """
    folder = Path(folder)
    write_examples(result.train, folder / "train.jsonl")
    write_examples(result.added, folder / "added.jsonl")
    write_text(
        folder / "dropped.jsonl",
        "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in result.dropped),
    )
    sha = file_sha256(folder / "train.jsonl")
    base = len(result.train) - len(result.added)
    record = {
        "data_version": f"sha256:{sha}",
        "file": f"{FOLDER}/train.jsonl",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "parent": {
            **parent,
            "data_version": f"sha256:{file_sha256(parent['train_file'])}",
        },
        "labels_file": dict(labels_file),
        "counts": {
            "base_train": base,
            "labelled": len(result.added) + len(result.dropped),
            "added": len(result.added),
            "dropped": result.counts,
            "disagrees_with_train": result.disagrees,
            "merged_train": len(result.train),
            "added_per_intent": dict(sorted(Counter(e.label for e in result.added).items())),
        },
        "protected": {k: dict(v) for k, v in protected.items()},
    }
    write_json(folder / VERSION_FILE, record, ensure_ascii=False)
    return record
