"""clean(): each reason drops what it should, counts add up, order is kept."""

from __future__ import annotations

import pytest

from mangaassist.data.cleaning import clean, contradictory_groups
from mangaassist.data.schema import Example


def ex(text: str, label: str = "faq", id: str = "", source: str = "production") -> Example:
    return Example(text=text, label=label, id=id, source=source)


def test_normalises_and_drops_exact_duplicates_keeping_the_first() -> None:
    kept, counts = clean(
        [ex("hi  there!!!!!", id="1"), ex("ok", id="2"), ex("hi there!!!", id="3")]
    )
    assert [(e.id, e.text) for e in kept] == [("1", "hi there!!!"), ("2", "ok")]
    assert counts["dropped_duplicates"] == 1


def test_near_duplicates_with_one_label_are_kept() -> None:
    kept, counts = clean([ex("Return policy?"), ex("return policy")])
    assert len(kept) == 2 and counts["dropped_contradictory"] == 0


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
        ex("cancel my order", "return_request", id="1"),
        ex("Cancel my order!", "return_request", id="2"),
        ex("cancel my order??", "order_tracking", id="3"),
    ]
    kept, counts = clean(rows)
    assert [e.id for e in kept] == ["1", "2"]
    assert counts["dropped_contradictory"] == 1


def test_counts_add_up_and_line_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        ex("x", id="s", source="synthetic"),
        ex("dup", id="d1"),
        ex("dup", id="d2"),
        ex("k", "faq"),
        ex("K!", "chitchat"),
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
