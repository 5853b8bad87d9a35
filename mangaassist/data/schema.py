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

import codecs
import csv
import difflib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mangaassist.atomic import replacing
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


# Column names other datasets use (Hugging Face, Rasa, BANKING77), to suggest a mapping.
TEXT_NAMES = ("utterance", "message", "query", "sentence", "question", "input", "content")
LABEL_NAMES = ("intent", "category", "class", "target", "labels")


def _columns_hint(found: list[str], text_column: str, label_column: str) -> str:
    """How to name a file's own columns: ``data.text_column=utterance`` (guessed) or ``=...``."""
    if (text_column, label_column) != REQUIRED:
        return f" (data.text_column={text_column} data.label_column={label_column})"
    fixes = []
    for key, want, names in (
        ("text", text_column, TEXT_NAMES),
        ("label", label_column, LABEL_NAMES),
    ):
        if want not in found:
            guess = next((c for c in found if c.lower() in names), "...")
            fixes.append(f"data.{key}_column={guess}")
    return f"; rename the column(s), or name yours: {' '.join(fixes)}"


def _row_to_example(
    row: dict, where: str, text_column: str = "text", label_column: str = "label"
) -> Example:
    missing = [c for c in (text_column, label_column) if c not in row]
    if missing:
        raise UserError(
            f"{where}: missing column(s) {missing}; every example needs '{text_column}' and "
            f"'{label_column}' (found {sorted(row)})"
            f"{_columns_hint(list(row), text_column, label_column)}"
        )
    text = row[text_column]
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where}: empty text; remove the line or write the message")
    label = row[label_column]
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


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 text of a file; a leading byte-order mark (Excel's "CSV UTF-8") is dropped."""
    fixed = path.with_name(f"{path.stem}.utf8{path.suffix}")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UserError(
            f"{path}: the file is UTF-16 text; re-save it as UTF-8 (Excel: 'CSV UTF-8'), or "
            f"convert it: iconv -f utf-16 -t utf-8 {path} > {fixed}"
        )
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise UserError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x} at column {column}); "
            "re-save the file as UTF-8 (Excel: 'CSV UTF-8'), or convert it: "
            f"iconv -f latin1 -t utf-8 {path} > {fixed}"
        ) from None


def read_rows(
    path: Path,
    data: bytes,
    text_column: str = "text",
    label_column: str = "label",
    how: str | None = None,
) -> list[tuple[str, dict]]:
    """The rows of a JSONL or CSV file's bytes, each with its ``path:line``, not yet validated.

    UTF-8 with or without a byte-order mark. Shared by :func:`read_examples` and the labelled
    files ``mangaassist retrain`` reads, which validate the rows their own way.

    Args:
        path: the file (its suffix picks the format; named in every message).
        data: its bytes.
        text_column, label_column: the CSV header must have both.
        how: what the user should do, appended to the empty-file and missing-column messages
            (default: a hint about one example per line / the data.*_column settings).

    Raises:
        UserError: non-UTF-8 or empty file, malformed JSON line, a line that is not an
            object, missing CSV column, unknown suffix.
    """
    raw = _decode(path, data)
    if not raw.strip():
        raise UserError(f"{path}: the file is empty; {how or 'it needs one example per line'}")

    rows: list[tuple[str, dict]] = []
    if path.suffix == ".csv":
        reader = csv.DictReader(raw.splitlines())
        header = reader.fieldnames or []
        missing = [c for c in (text_column, label_column) if c not in header]
        if missing:
            hint = f"; {how}" if how else _columns_hint(header, text_column, label_column)
            raise UserError(
                f"{path}:1: missing column(s) {missing} in the header (found {header}){hint}"
            )
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
                raise UserError(
                    f"{path}:{i}: expected a JSON object with '{text_column}' and '{label_column}'"
                )
            rows.append((f"{path}:{i}", row))
    else:
        raise UserError(f"{path}: unknown format '{path.suffix}'; use .jsonl or .csv")
    return rows


def read_examples(
    path: str | Path,
    labels: list[str] | tuple[str, ...] | None = None,
    text_column: str = "text",
    label_column: str = "label",
) -> list[Example]:
    """Read a JSONL (``.jsonl``/``.json``) or CSV file of examples and validate every row.

    UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8" writes one).

    Args:
        path: the file; its suffix picks the format.
        labels: the allowed labels; a row with any other label is an error. None allows any.
        text_column, label_column: the column (JSON key) of the message and of its label.

    Raises:
        UserError: unreadable, non-UTF-8 or empty file, malformed line, missing column (a
            CSV's at its header, line 1), empty text or label, unknown label; the message
            names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; check the path (data.train / data.val / data.test)")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err})") from err
    rows = read_rows(path, data, text_column, label_column)
    if not rows:
        raise UserError(f"{path}: no examples found; it needs one example per line")

    examples = [_row_to_example(row, where, text_column, label_column) for where, row in rows]
    if labels is not None:
        allowed = set(labels)
        for (where, _), ex in zip(rows, examples, strict=True):
            if ex.label not in allowed:
                near = difflib.get_close_matches(ex.label, sorted(allowed), n=1)
                guess = f"did you mean {near[0]}? " if near else ""
                raise UserError(
                    f"{where}: unknown label '{ex.label}'; {guess}expected one of "
                    f"{sorted(allowed)}. Fix the label or add it to data.labels"
                )
    return examples


def example_line(ex: Example) -> str:
    """One JSON line of ``ex`` as :func:`write_examples` writes it (fixed key order, UTF-8 text)."""
    return json.dumps(ex.to_dict(), ensure_ascii=False) + "\n"


def sha256_examples(examples: Sequence[Example]) -> str:
    """Hex sha256 of ``examples`` as :func:`write_examples` writes them (byte-stable)."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(example_line(ex).encode("utf-8"))
    return digest.hexdigest()


def write_examples(examples: list[Example], path: str | Path) -> None:
    """Write examples as JSON lines (UTF-8, keys in a fixed order, so output is byte-stable)."""
    # Atomic: a killed run must not leave a truncated split or corpus that looks complete.
    with replacing(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for ex in examples:
            f.write(example_line(ex))
