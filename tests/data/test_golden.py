"""The hand-written golden set: size, coverage, label rule, tags and README stay consistent.

The golden set is for reporting only (never training or tuning); these checks keep it a
trustworthy yardstick: every intent covered, the multi-intent priority rule applied, and
the tag vocabulary documented in its README with the counts the file really has.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from mangaassist.data.schema import INTENTS, Example, primary_intent, read_examples

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "mangaassist" / "data" / "golden"
GOLDEN = GOLDEN_DIR / "golden.jsonl"
README = GOLDEN_DIR / "README.md"

RARE = ("escalation", "checkout_help")
STYLE_TAGS = ("slang", "typo", "emoji", "short", "long", "romaji", "kana")
# The documented vocabulary; README.md's tag table must list exactly these.
TAGS = frozenset(
    (
        "plain",
        *STYLE_TAGS,
        "multi_intent",
        "rare_intent",
        "boundary",
        "boundary:title_fact_vs_discovery",
        "boundary:like_title",
        "boundary:opinion_recommendation",
        "boundary:author_discovery",
        "boundary:child_suitability",
        "boundary:best_vs_bestseller",
        "boundary:catalog_language",
        "boundary:coupon_promo_vs_checkout",
        "boundary:title_sale",
        "boundary:points",
        "boundary:shipping_threshold",
        "boundary:price_match",
        "boundary:policy_vs_return",
        "boundary:delivery_faq_vs_tracking",
        "boundary:support_hours",
        "boundary:refund_status",
        "boundary:order_went_through",
        "boundary:failed_payment",
        "boundary:partial_delivery",
        "boundary:wrong_damaged_item",
        "boundary:bare_cancel",
        "boundary:annoyance_vs_escalation",
        "boundary:legal_chargeback",
        "boundary:account_takeover",
        "boundary:privacy_leak",
        "boundary:safety",
        "boundary:greeting_with_ask",
        "boundary:fan_talk",
    )
)
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


@pytest.fixture(scope="module")
def golden() -> list[Example]:
    return read_examples(GOLDEN, labels=INTENTS)


def _readme_table(header: str) -> dict[str, int]:
    """Rows ``| `name` | count | ... |`` of the README table headed ``| header |``."""
    rows: dict[str, int] = {}
    in_table = False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"| {header} |"):
            in_table = True
            continue
        if in_table:
            m = re.match(r"\|\s*`([^`]+)`\s*\|\s*(\d+)\s*\|", line)
            if m:
                rows[m.group(1)] = int(m.group(2))
            elif not line.startswith("|"):
                break
    return rows


def test_size_and_per_intent_coverage(golden: list[Example]) -> None:
    assert len(golden) >= 400
    counts = Counter(ex.label for ex in golden)
    for intent in INTENTS:
        need = 60 if intent in RARE else 35
        assert counts[intent] >= need, f"{intent}: {counts[intent]} < {need}"


def test_ids_unique_and_sorted(golden: list[Example]) -> None:
    ids = [ex.id for ex in golden]
    assert all(re.fullmatch(r"g\d{4}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(ex.source == "golden" for ex in golden)


def test_texts_unique_after_normalising(golden: list[Example]) -> None:
    norm = Counter(" ".join(ex.text.lower().split()) for ex in golden)
    dups = [t for t, c in norm.items() if c > 1]
    assert not dups, dups


def test_multi_intent_follows_priority_rule(golden: list[Example]) -> None:
    for ex in golden:
        assert ("multi_intent" in ex.tags) == bool(ex.secondary_intents), ex.id
        if ex.secondary_intents:
            assert set(ex.secondary_intents) <= set(INTENTS), ex.id
            assert ex.label not in ex.secondary_intents, ex.id
            assert ex.label == primary_intent([ex.label, *ex.secondary_intents]), ex.id


def test_tags_in_vocabulary_and_consistent(golden: list[Example]) -> None:
    for ex in golden:
        tags = set(ex.tags)
        assert tags <= TAGS, f"{ex.id}: undocumented tag(s) {sorted(tags - TAGS)}"
        assert ("rare_intent" in tags) == (ex.label in RARE), ex.id
        has_specific = any(t.startswith("boundary:") for t in tags)
        assert ("boundary" in tags) == has_specific, ex.id
        assert ("plain" in tags) == (not tags & set(STYLE_TAGS)), ex.id
        assert ("kana" in tags) == bool(JAPANESE.search(ex.text)), ex.id
        assert ("boundary:greeting_with_ask" in tags) == ("chitchat" in ex.secondary_intents), ex.id


def test_style_coverage(golden: list[Example]) -> None:
    tag_counts = Counter(t for ex in golden for t in ex.tags)
    japanese = sum(1 for ex in golden if {"romaji", "kana"} & set(ex.tags))
    assert japanese >= 40
    assert tag_counts["multi_intent"] >= 60
    assert tag_counts["slang"] >= 60


def test_readme_documents_tags_and_counts(golden: list[Example]) -> None:
    tag_table = _readme_table("tag")
    assert set(tag_table) == TAGS, "README tag table and the test's vocabulary differ"
    tag_counts = Counter(t for ex in golden for t in ex.tags)
    assert tag_table == {t: tag_counts[t] for t in TAGS}
    label_table = _readme_table("label")
    assert label_table == dict(Counter(ex.label for ex in golden))


def _specific(text: str) -> bool:
    """Long enough that two people writing it word for word is unlikely (not "hi", "refund")."""
    from mangaassist.data.normalize import dedup_key

    if re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text):
        return len(dedup_key(text)) >= 11  # no spaces to count: characters, punctuation aside
    return len(text.split()) >= 4


def test_no_golden_message_is_copied_into_the_generator(golden: list[Example]) -> None:
    # The golden set measures how the model does on messages no generator produced; a
    # phrasing bank holding one of them verbatim would turn it into a training example.
    from mangaassist.data.generator.phrasings import BANKS
    from mangaassist.data.normalize import dedup_key

    phrasings = [
        text
        for bank in BANKS.values()
        for text in (*bank.single, *(t for t, _ in bank.built_in_multi), *bank.japanese)
    ]
    keys = {dedup_key(text) for text in phrasings}
    copied = [ex.text for ex in golden if _specific(ex.text) and dedup_key(ex.text) in keys]
    assert copied == []
