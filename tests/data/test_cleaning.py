"""clean(): each reason drops what it should, counts add up, order is kept."""

from __future__ import annotations

import pytest

from mangaassist.data.cleaning import clean, contradictory_groups, duplicate_mask, sender
from mangaassist.data.schema import Example


def ex(
    text: str, label: str = "faq", id: str = "", source: str = "production", user: str = ""
) -> Example:
    return Example(text=text, label=label, id=id, source=source, user_id=user)


def test_normalises_and_drops_resends_keeping_the_first() -> None:
    rows = [
        ex("hi  there!!!!!", id="1", user="a"),
        ex("ok", id="2"),
        ex("HI there", id="3", user="a"),
    ]
    kept, counts = clean(rows)
    assert [(e.id, e.text) for e in kept] == [("1", "hi there!!!"), ("2", "ok")]
    assert counts["dropped_duplicates"] == 1


def test_same_text_from_different_users_is_kept_unless_exact_scope() -> None:
    rows = [ex("where is my order", user="a"), ex("where is my order", user="b")]
    assert len(clean(rows)[0]) == 2
    assert len(clean(rows, duplicates="exact")[0]) == 1
    # rows without user or conversation are one sender per source
    synthetic = [ex("return policy?", source="synthetic"), ex("Return policy", source="synthetic")]
    assert duplicate_mask(synthetic) == [False, True]
    assert sender(synthetic[0]) == "source:synthetic"
    assert sender(Example("x", "faq", conversation_id="c1")) == "conversation:c1"


def test_exact_scope_needs_identical_normalised_text() -> None:
    rows = [ex("Return policy?", user="a"), ex("return policy", user="a"), ex("Return  policy?")]
    assert duplicate_mask(rows, "exact") == [False, False, True]
    with pytest.raises(ValueError, match="duplicates='global'"):
        duplicate_mask(rows, "global")  # type: ignore[arg-type]


def test_drops_flagged_synthetic_ids() -> None:
    rows = [ex("a {product}", id="s1", source="synthetic"), ex("b", id="s2", source="synthetic")]
    kept, counts = clean(rows, flagged_ids=["s1"])
    assert [e.id for e in kept] == ["s2"]
    assert counts["dropped_synthetic"] == 1


def test_contradictory_group_without_majority_is_dropped_whole() -> None:
    rows = [ex("cancel my order", "return_request"), ex("Cancel my order!", "order_tracking")]
    rows.append(ex("something else"))
    kept, counts = clean(rows)
    assert [e.text for e in kept] == ["something else"]
    assert counts["dropped_contradictory"] == 2 and counts["contradictory_groups"] == 1


def test_contradictory_group_with_two_thirds_majority_keeps_the_majority() -> None:
    rows = [
        ex("cancel my order", "return_request", id="1", user="a"),
        ex("Cancel my order!", "return_request", id="2", user="b"),
        ex("cancel my order??", "order_tracking", id="3", user="c"),
    ]
    kept, counts = clean(rows)
    assert [e.id for e in kept] == ["1", "2"]
    assert counts["dropped_contradictory"] == 1


def test_counts_add_up_and_line_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        ex("x", id="s", source="synthetic"),
        ex("dup", id="d1", user="u"),
        ex("dup", id="d2", user="u"),
        ex("k", "faq", user="v"),
        ex("K!", "chitchat", user="w"),
        ex("fine"),
    ]
    _, counts = clean(rows, flagged_ids={"s"})
    dropped = counts["dropped_synthetic"] + counts["dropped_contradictory"]
    assert counts["kept"] + dropped + counts["dropped_duplicates"] == counts["input"] == 6
    assert counts == {
        "input": 6,
        "kept": 2,
        "dropped_synthetic": 1,
        "dropped_contradictory": 2,
        "dropped_duplicates": 1,
        "contradictory_groups": 1,
    }
    out = capsys.readouterr().out
    assert "[CLEAN] kept=2 dropped_synthetic=1 dropped_contradictory=2 dropped_duplicates=1" in out


def test_contradictory_groups_lists_label_counts() -> None:
    groups = contradictory_groups([ex("a", "faq"), ex("A", "chitchat"), ex("b")])
    assert groups == {"a": {"faq": 1, "chitchat": 1}}
