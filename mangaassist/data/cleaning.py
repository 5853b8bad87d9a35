"""Turn an audited corpus into a training corpus: normalise, drop what the audit condemns.

Four reasons to drop an example, applied in this order and counted separately:

1. ``synthetic``: its id is in the audit's flagged low-quality synthetic ids;
2. ``contradictory``: it shares a :func:`dedup_key` with examples of another label. The whole
   group is dropped, unless one label holds at least ``majority`` (2/3) of it; then only the
   minority-label members go (the majority is taken as the right label);
3. ``duplicates``: its normalised text equals an earlier kept example's (first one kept).

Example:
    >>> from mangaassist.data.schema import Example
    >>> exs = [Example("hi!!!!!", "chitchat"), Example("hi!!!", "chitchat"),
    ...        Example("refund pls", "return_request", id="s1", source="synthetic")]
    >>> kept, counts = clean(exs, flagged_ids={"s1"}, verbose=False)
    >>> [ex.text for ex in kept], counts["dropped_duplicates"], counts["dropped_synthetic"]
    (['hi!!!'], 1, 1)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace

from mangaassist.data.normalize import dedup_key, normalize_text
from mangaassist.data.schema import Example

MAJORITY = 2 / 3  # a label this dominant in a contradictory group is taken as the truth


def contradictory_groups(examples: list[Example]) -> dict[str, Counter[str]]:
    """dedup_key -> label counts, for every key whose examples carry more than one label."""
    labels: dict[str, Counter[str]] = defaultdict(Counter)
    for ex in examples:
        labels[dedup_key(ex.text)][ex.label] += 1
    return {key: counts for key, counts in labels.items() if len(counts) > 1}


def _majority_label(counts: Counter[str], majority: float) -> str | None:
    label, top = max(sorted(counts.items()), key=lambda kv: kv[1])  # sorted: stable ties
    return label if top / sum(counts.values()) >= majority else None


def clean(
    examples: list[Example],
    flagged_ids: Iterable[str] = (),
    *,
    majority: float = MAJORITY,
    verbose: bool = True,
) -> tuple[list[Example], dict]:
    """Normalise texts and drop flagged synthetic, contradictory and duplicate examples.

    Args:
        examples: the corpus, in any order; the kept examples keep that order.
        flagged_ids: ids to drop as low-quality synthetic (``audit.json``'s
            ``synthetic_flagged`` ids, usually).
        majority: share one label needs in a contradictory group to survive (default 2/3).
        verbose: print the ``[CLEAN]`` line.

    Returns:
        ``(kept, counts)`` with counts ``input, kept, dropped_synthetic,
        dropped_contradictory, dropped_duplicates, contradictory_groups``.
    """
    flagged = set(flagged_ids)
    normalised = [replace(ex, text=normalize_text(ex.text)) for ex in examples]

    not_flagged = [ex for ex in normalised if not (ex.id and ex.id in flagged)]
    dropped_synthetic = len(normalised) - len(not_flagged)

    conflicts = contradictory_groups(not_flagged)
    keep_label = {key: _majority_label(counts, majority) for key, counts in conflicts.items()}
    consistent = [
        ex
        for ex in not_flagged
        if (key := dedup_key(ex.text)) not in keep_label or keep_label[key] == ex.label
    ]
    dropped_contradictory = len(not_flagged) - len(consistent)

    seen: set[str] = set()
    kept = []
    for ex in consistent:
        if ex.text not in seen:
            seen.add(ex.text)
            kept.append(ex)
    counts = {
        "input": len(examples),
        "kept": len(kept),
        "dropped_synthetic": dropped_synthetic,
        "dropped_contradictory": dropped_contradictory,
        "dropped_duplicates": len(consistent) - len(kept),
        "contradictory_groups": len(conflicts),
    }
    if verbose:
        print(
            f"[CLEAN] kept={counts['kept']} dropped_synthetic={dropped_synthetic} "
            f"dropped_contradictory={dropped_contradictory} "
            f"dropped_duplicates={counts['dropped_duplicates']} "
            f"contradictory_groups={len(conflicts)}"
        )
    return kept, counts
