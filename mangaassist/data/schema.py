"""The example contract every dataset, generator, golden set and report shares.

An example is one user message with its intent. On disk it is a JSON line or a CSV row with
at least ``text`` and ``label``; the optional fields below travel with it when present.
The ten MangaAssist intents and their multi-intent priority come from
``shared/intent-taxonomy.md``.

Example:
    >>> ex = Example(text="where is my order", label="order_tracking")
    >>> ex.label in INTENTS
    True
    >>> primary_intent(["faq", "escalation", "chitchat"])
    'escalation'
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mangaassist.errors import UserError

# Taxonomy order: the order of the table in intent-taxonomy.md, used for label indices.
INTENTS: tuple[str, ...] = (
    "product_discovery",
    "product_question",
    "recommendation",
    "faq",
    "order_tracking",
    "return_request",
    "promotion",
    "checkout_help",
    "escalation",
    "chitchat",
)

# Multi-intent rule: the intent that needs action first wins (first in this tuple).
PRIORITY: tuple[str, ...] = (
    "escalation",
    "return_request",
    "order_tracking",
    "checkout_help",
    "product_question",
    "recommendation",
    "product_discovery",
    "promotion",
    "faq",
    "chitchat",
)

SOURCES = ("production", "synthetic", "golden")
REQUIRED = ("text", "label")


def primary_intent(intents: list[str]) -> str:
    """Return the intent the taxonomy's priority rule labels a multi-intent message with."""
    unknown = [i for i in intents if i not in PRIORITY]
    if unknown:
        raise UserError(f"unknown intent(s) {unknown}; the taxonomy has {list(PRIORITY)}")
    return min(intents, key=PRIORITY.index)


@dataclass
class Example:
    """One labelled message; optional fields default to empty."""

    text: str
    label: str
    id: str = ""
    conversation_id: str = ""
    user_id: str = ""
    source: str = "production"
    secondary_intents: list[str] = field(default_factory=list)
    timestamp: str = ""
    tags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain dict for JSON, dropping empty optional fields."""
        return {k: v for k, v in asdict(self).items() if v not in ("", [], None)}


def _row_to_example(row: dict, where: str) -> Example:
    missing = [c for c in REQUIRED if c not in row]
    if missing:
        raise UserError(
            f"{where}: missing column(s) {missing}; every example needs 'text' and 'label' "
            f"(found {sorted(row)})"
        )
    text = row["text"]
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where}: empty text; remove the line or write the message")
    label = row["label"]
    if not isinstance(label, str) or not label.strip():
        raise UserError(f"{where}: empty label; every example needs one intent label")

    def as_list(value: object) -> list[str]:
        if value in (None, ""):
            return []
        if isinstance(value, str):  # CSV cells hold lists as "a|b"
            return [v for v in value.split("|") if v]
        return [str(v) for v in value]  # type: ignore[union-attr]

    return Example(
        text=text,
        label=label.strip(),
        id=str(row.get("id") or ""),
        conversation_id=str(row.get("conversation_id") or ""),
        user_id=str(row.get("user_id") or ""),
        source=str(row.get("source") or "production"),
        secondary_intents=as_list(row.get("secondary_intents")),
        timestamp=str(row.get("timestamp") or ""),
        tags=as_list(row.get("tags")),
    )


def read_examples(
    path: str | Path, labels: list[str] | tuple[str, ...] | None = None
) -> list[Example]:
    """Read a JSONL (``.jsonl``/``.json``) or CSV file of examples and validate every row.

    Args:
        path: the file; its suffix picks the format.
        labels: the allowed labels; a row with any other label is an error. None allows any.

    Raises:
        UserError: unreadable or empty file, malformed line, missing column, empty text or
            label, unknown label; the message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; check the path (data.train / data.val / data.test)")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read it as UTF-8 text ({err})") from err
    if not raw.strip():
        raise UserError(f"{path}: the file is empty; it needs one example per line")

    rows: list[tuple[str, dict]] = []
    if path.suffix == ".csv":
        reader = csv.DictReader(raw.splitlines())
        for i, row in enumerate(reader, start=2):  # line 1 is the header
            rows.append((f"{path}:{i}", row))
    elif path.suffix in (".jsonl", ".json"):
        for i, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(
                    f"{path}:{i}: not valid JSON ({err.msg}); one object per line"
                ) from err
            if not isinstance(row, dict):
                raise UserError(f"{path}:{i}: expected a JSON object with 'text' and 'label'")
            rows.append((f"{path}:{i}", row))
    else:
        raise UserError(f"{path}: unknown format '{path.suffix}'; use .jsonl or .csv")
    if not rows:
        raise UserError(f"{path}: no examples found; it needs one example per line")

    examples = [_row_to_example(row, where) for where, row in rows]
    if labels is not None:
        allowed = set(labels)
        for (where, _), ex in zip(rows, examples, strict=True):
            if ex.label not in allowed:
                raise UserError(
                    f"{where}: unknown label '{ex.label}'; expected one of {sorted(allowed)}. "
                    "Fix the label or add it to data.labels"
                )
    return examples


def example_line(ex: Example) -> str:
    """One JSON line of ``ex`` as :func:`write_examples` writes it (fixed key order, UTF-8 text)."""
    return json.dumps(ex.to_dict(), ensure_ascii=False) + "\n"


def write_examples(examples: list[Example], path: str | Path) -> None:
    """Write examples as JSON lines (UTF-8, keys in a fixed order, so output is byte-stable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for ex in examples:
            f.write(example_line(ex))
