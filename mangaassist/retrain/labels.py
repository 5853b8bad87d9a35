"""The labellers' file: ``mangaassist active-learn``'s JSONL or CSV, its ``label`` column filled.

Each row needs ``text`` and ``label``; the other columns active-learn writes (``request_id``,
``guess``, ``why``, ...) are kept where useful (``request_id`` becomes the example's id, ``ts``
its timestamp) and otherwise ignored. A row whose ``label`` is left empty was not labelled
(the labeller could not tell): it is skipped and counted, not an error. A label that is not
one of the model's intents is an error naming the line and the valid intents, so a typo never
becomes a new class. The CSV is read as active-learn writes it: UTF-8 with a byte-order mark,
and a message that starts with ``= + - @`` carries a leading ``'`` (the guard against Excel
formulas), which is removed again.

Example:
    >>> import tempfile, json
    >>> from pathlib import Path
    >>> f = Path(tempfile.mkdtemp()) / "to_label.jsonl"
    >>> rows = [{"text": "where is my order", "label": "order_tracking", "request_id": "r1"},
    ...         {"text": "hmm", "label": ""}]
    >>> _ = f.write_text("".join(json.dumps(r) + "\\n" for r in rows))
    >>> got = read_label_file(f, ["order_tracking", "faq"])
    >>> [(e.text, e.label, e.id) for e in got.examples], got.unlabelled
    ([('where is my order', 'order_tracking', 'r1')], 1)
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mangaassist.data.schema import Example, read_rows
from mangaassist.errors import UserError

HOW = (
    "select messages with `mangaassist active-learn LOGS --budget 500 --out to_label.jsonl`, "
    "fill its label column, and pass that file"
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # active-learn's CSV prefixes these with '
TAG = "retrain"  # every added example carries it, so the training file says where it came from


@dataclass
class LabelFile:
    """The labelled rows of one file, where each came from, and what was skipped."""

    path: Path
    sha256: str
    rows: int
    examples: list[Example] = field(default_factory=list)
    where: list[str] = field(default_factory=list)  # "FILE:LINE" of each example
    unlabelled: int = 0


def _rows(path: Path, data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """data/schema's row reader, then the active-learn CSV's formula guard undone."""
    rows = read_rows(path, data, how=HOW)
    if path.suffix == ".csv":
        for _, row in rows:
            text = row.get("text") or ""
            if text[:1] == "'" and text[1:2] in _FORMULA:
                row["text"] = text[1:]  # undo the CSV's formula guard
    return rows


def read_label_file(path: str | Path, labels: list[str] | tuple[str, ...]) -> LabelFile:
    """Read and check a labelled file against the model's ``labels``.

    Raises:
        UserError: a missing, empty or non-UTF-8 file; a row without text; a label outside
            ``labels`` (the line, the label, a near match and the valid intents named); no
            labelled row at all.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such labels file; {HOW}")
    data = path.read_bytes()  # one read: the rows and the hash the data version records
    rows = _rows(path, data)
    got = LabelFile(path=path, sha256=hashlib.sha256(data).hexdigest(), rows=len(rows))
    allowed = set(labels)
    for where, row in rows:
        text, label = row.get("text"), row.get("label")
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{where}: no text; every row needs the message in 'text'")
        if label is None or (isinstance(label, str) and not label.strip()):
            got.unlabelled += 1
            continue
        label = str(label).strip()
        if label not in allowed:
            near = difflib.get_close_matches(label, sorted(allowed), n=1)
            guess = f"did you mean {near[0]}? " if near else ""
            raise UserError(
                f"{where}: unknown label {label!r}; {guess}the valid intents are "
                f"{', '.join(labels)}"
            )
        got.examples.append(
            Example(
                text=text,
                label=label,
                id=str(row.get("request_id") or row.get("id") or ""),
                timestamp=str(row.get("ts") or row.get("timestamp") or ""),
                tags=[TAG],
            )
        )
        got.where.append(where)
    if not got.examples:
        raise UserError(
            f"{path}: none of its {got.rows} rows has a label; fill the label column "
            f"(one of {', '.join(labels)})"
        )
    return got
