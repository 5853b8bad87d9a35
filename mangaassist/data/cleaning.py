"""Turn an audited corpus into a training corpus: normalise, drop what the audit condemns.

Three reasons to drop an example, applied in this order and counted separately:

1. ``synthetic``: its id is in the audit's flagged low-quality synthetic ids;
2. ``contradictory``: it shares a :func:`dedup_key` with examples of another label. The whole
   group is dropped, unless one label holds at least ``majority`` (2/3) of it; then only the
   minority-label members go (the majority is taken as the right label);
3. ``duplicates``: a repeat of an earlier kept example. ``duplicates="sender"`` (default)
   drops re-sends: the same dedup key from the same sender (``user_id``, else
   ``conversation_id``; rows with neither count as one sender per source).
   ``duplicates="exact"`` drops every repeat of the same normalised text, whoever sent it,
   which on chat logs also removes the many people who each typed "hi" or "where is my
   order" and so skews the class mix toward long messages.

Example:
    >>> from mangaassist.data.schema import Example
    >>> exs = [Example("hi!!!!!", "chitchat", user_id="u1"),
    ...        Example("HI", "chitchat", user_id="u1"),
    ...        Example("hi", "chitchat", user_id="u2"),
    ...        Example("refund pls", "return_request", id="s1", source="synthetic")]
    >>> kept, counts = clean(exs, flagged_ids={"s1"}, verbose=False)
    >>> [ex.text for ex in kept], counts["dropped_duplicates"], counts["dropped_synthetic"]
    (['hi!!!', 'hi'], 1, 1)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from typing import Literal

from mangaassist.data.normalize import dedup_key, normalize_text
from mangaassist.data.schema import Example

MAJORITY = 2 / 3  # a label this dominant in a contradictory group is taken as the truth


def sender(ex: Example) -> str:
    """Who sent a message: its user, else its conversation, else its whole source."""
    if ex.user_id:
        return f"user:{ex.user_id}"
    if ex.conversation_id:
        return f"conversation:{ex.conversation_id}"
    return f"source:{ex.source}"


def contradictory_groups(examples: list[Example]) -> dict[str, Counter[str]]:
    """dedup_key -> label counts, for every key whose examples carry more than one label."""
    labels: dict[str, Counter[str]] = defaultdict(Counter)
    for ex in examples:
        labels[dedup_key(ex.text)][ex.label] += 1
    return {key: counts for key, counts in labels.items() if len(counts) > 1}


def _majority_label(counts: Counter[str], majority: float) -> str | None:
    label, top = max(sorted(counts.items()), key=lambda kv: kv[1])  # sorted: stable ties
    return label if top / sum(counts.values()) >= majority else None


def contradictory_mask(examples: list[Example], majority: float = MAJORITY) -> list[bool]:
    """True for each example the contradictory-duplicate rule drops."""
    keep_label = {
        key: _majority_label(counts, majority)
        for key, counts in contradictory_groups(examples).items()
    }
    return [
        (key := dedup_key(ex.text)) in keep_label and keep_label[key] != ex.label for ex in examples
    ]


def duplicate_mask(
    examples: list[Example], scope: Literal["sender", "exact"] = "sender"
) -> list[bool]:
    """True for each example that repeats an earlier one (the first is never a repeat).

    ``"sender"``: same :func:`sender` and :func:`dedup_key` (a re-send, even with other case
    or punctuation). ``"exact"``: same :func:`normalize_text`, from anyone.
    """
    if scope not in ("sender", "exact"):
        raise ValueError(f"duplicates={scope!r}; expected 'sender' or 'exact'")
    seen: set[tuple[str, str]] = set()
    repeats = []
    for ex in examples:
        key = (
            (sender(ex), dedup_key(ex.text)) if scope == "sender" else ("", normalize_text(ex.text))
        )
        repeats.append(key in seen)
        seen.add(key)
    return repeats


def clean(
    examples: list[Example],
    flagged_ids: Iterable[str] = (),
    *,
    majority: float = MAJORITY,
    duplicates: Literal["sender", "exact"] = "sender",
    verbose: bool = True,
) -> tuple[list[Example], dict]:
    """Normalise texts and drop flagged synthetic, contradictory and duplicate examples.

    Args:
        examples: the corpus, in any order; the kept examples keep that order.
        flagged_ids: ids to drop as low-quality synthetic (``audit.json``'s
            ``synthetic_flagged`` ids, or ``AuditReport.flagged_synthetic_ids``).
        majority: share one label needs in a contradictory group to survive (default 2/3).
        duplicates: ``"sender"`` drops re-sends, ``"exact"`` every repeated text.
        verbose: print the ``[CLEAN]`` line.

    Returns:
        ``(kept, counts)`` with counts ``input, kept, dropped_synthetic,
        dropped_contradictory, dropped_duplicates, contradictory_groups``.
    """
    flagged = set(flagged_ids)
    normalised = [replace(ex, text=normalize_text(ex.text)) for ex in examples]

    not_flagged = [ex for ex in normalised if not (ex.id and ex.id in flagged)]
    n_groups = len(contradictory_groups(not_flagged))
    drop = contradictory_mask(not_flagged, majority)
    consistent = [ex for ex, d in zip(not_flagged, drop, strict=True) if not d]
    repeat = duplicate_mask(consistent, duplicates)
    kept = [ex for ex, r in zip(consistent, repeat, strict=True) if not r]

    counts = {
        "input": len(examples),
        "kept": len(kept),
        "dropped_synthetic": len(normalised) - len(not_flagged),
        "dropped_contradictory": len(not_flagged) - len(consistent),
        "dropped_duplicates": len(consistent) - len(kept),
        "contradictory_groups": n_groups,
    }
    if verbose:
        print(
            f"[CLEAN] kept={counts['kept']} dropped_synthetic={counts['dropped_synthetic']} "
            f"dropped_contradictory={counts['dropped_contradictory']} "
            f"dropped_duplicates={counts['dropped_duplicates']} "
            f"contradictory_groups={n_groups} duplicates={duplicates}"
        )
    return kept, counts
