"""normalize_text is the contract between training and serving: pin its cases and idempotence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mangaassist.data.normalize import dedup_key, normalize_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  where is\tmy\n\norder  ", "where is my order"),
        ("where\u200bis\u200c my\u200d or\u2060der\ufeff", "whereis my order"),
        ("wow!!!!!!", "wow!!!"),
        ("really??????", "really???"),
        ("???", "???"),
        ("hmm......", "hmm..."),
        ("hmm……", "hmm..."),  # NFKC turns "…" into "...", then the run is shortened
        ("ＯＮＥ ＰＩＥＣＥ　１２巻", "ONE PIECE 12巻"),  # full-width to ASCII, ideographic space
        ("Chainsaw Man", "Chainsaw Man"),  # case is kept
        ("😂😂😂😂😂", "😂😂😂😂😂"),  # emoji runs are tone, not punctuation
        ("この漫画の在庫ありますか？？？？", "この漫画の在庫ありますか???"),
        ("", ""),
        ("\u200b \n", ""),
    ],
)
def test_normalize_cases(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab !?.\u200b\t\n…ＡＢ"))))
def test_normalize_is_idempotent_on_dense_punctuation(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert "  " not in once and "\u200b" not in once and once == once.strip()


def test_dedup_key_matches_normalised_duplicates() -> None:
    assert dedup_key("Where is my ORDER?!") == dedup_key("where is my order")
    assert dedup_key("where  is my order 😊") == dedup_key("where is my order")
    assert dedup_key("is vol 12 in stock") != dedup_key("is vol 13 in stock")
    assert dedup_key("この漫画の在庫ありますか？") == "この漫画の在庫ありますか"


def test_dedup_key_of_emoji_only_texts_differ() -> None:
    assert dedup_key("😂") != dedup_key("👍")
    assert dedup_key(" 😂 ") == dedup_key("😂")
