"""Script and length slices: what each message counts as, and the figures per slice.

Every message here is written for this test (none from the golden set).
"""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from mangaassist.evaluation import slices
from mangaassist.evaluation.evaluate import evaluate_arrays, write_evaluation
from mangaassist.evaluation.slices import (
    length_bucket,
    looks_romaji,
    script_of,
    slice_metrics,
    slices_line,
    wilson_interval,
    word_count,
)


@pytest.mark.parametrize(
    ("text", "tags", "script"),
    [
        ("注文した本が届かない", None, "japanese"),
        ("ｷｬﾝｾﾙしたい", None, "japanese"),  # half-width katakana
        ("届いてない！！😭 12345", None, "japanese"),  # digits, punctuation, emoji ignored
        ("在庫は？", None, "japanese"),
        ("chuumon no kakunin onegai", None, "romaji"),
        ("ashita made ni todokimasu ka", None, "romaji"),
        ("is the new volume in stock ne", None, "romaji"),  # a sentence-final particle
        ("where's my order", None, "latin"),
        ("is boku no hero finished", None, "latin"),  # one "no" in a title is not romaji
        ("do you have kimi ni todoke", None, "latin"),
        ("12345", None, "latin"),  # no letters at all: the default slice
        ("👍", None, "latin"),
        ("order 12345 まだ届いてない", None, "mixed"),
        ("vol 3 の在庫 please", None, "mixed"),
        ("ＯＲＤＥＲ まだ", None, "mixed"),  # full-width Latin letters are Latin
        # A set that tags romaji: the tag decides, not the detector.
        ("where is vol 3", ["romaji"], "romaji"),
        ("kono manga zaiko aru", [], "latin"),
        ("kono manga zaiko aru", ["slang"], "latin"),
        ("この漫画 zaiko aru", ["romaji"], "mixed"),  # Japanese letters outrank the tag
    ],
)
def test_script_of(text, tags, script):
    assert script_of(text, tags) == script


def test_romaji_detector_rules():
    assert looks_romaji("mada todokanai")  # a listed word
    assert looks_romaji("hairimasu")  # not listed: a long syllable-shaped word ending -masu
    assert looks_romaji("apple pay ga dame ni natta")  # two strong particles
    assert looks_romaji("sore da yo")  # a two-word ending
    # The syllable rule: every word syllable-shaped, and particles "no", "to", "mo".
    assert looks_romaji("ane no tomodachi to eiga mo mita")
    assert not looks_romaji("i want to return my order")
    assert not looks_romaji("anime name")  # syllable-shaped words alone never decide


@pytest.mark.parametrize(
    ("words", "bucket"),
    [(1, "short"), (8, "short"), (9, "medium"), (34, "medium"), (35, "long"), (60, "long")],
)
def test_length_bucket_edges_in_words(words, bucket):
    assert length_bucket(" ".join(["vol"] * words)) == bucket


def test_japanese_runs_count_two_characters_a_word():
    # 16 kana = 8 words (short); 17 = ceil(8.5) = 9 words (medium).
    assert word_count("あ" * 16) == 8 and length_bucket("あ" * 16) == "short"
    assert word_count("あ" * 17) == 9 and length_bucket("あ" * 17) == "medium"
    # "no.5の" = 1 (the Latin part) + 1 (one kana); "。" alone holds no letter: 0.
    assert word_count("no.5の 。 本") == 3
    assert word_count("12345まだ届いてない") == 1 + 4


def test_bucket_edges_are_the_documented_constants():
    assert (slices.SHORT_MAX_WORDS, slices.MEDIUM_MAX_WORDS) == (8, 34)


def test_wilson_interval_hand_computed():
    # p = 0.7, n = 10, z = 1.96: centre (0.7 + z²/20) / (1 + z²/10) = 0.6445,
    # half-width z * sqrt(0.021 + z²/400) / (1 + z²/10) = 0.2477.
    lo, hi = wilson_interval(7, 10)
    assert lo == pytest.approx(0.3968, abs=1e-4) and hi == pytest.approx(0.8922, abs=1e-4)
    # 3/3: centre = half-width = ..., upper bound 1, lower 0.4385.
    assert wilson_interval(3, 3) == pytest.approx((0.4385, 1.0), abs=1e-4)


# A hand-built set: 10 latin (7 right), 3 romaji (3 right), 4 japanese (2 right), 1 mixed
# (0 right). Classes a=0, b=1, c=2.
LATIN = [
    "where is my order",
    "any new isekai this week",
    "is vol 12 in stock",
    "my card got declined again",
    "refund for the box set",
    "thanks a lot",
    "what's the code for 20 off",
    "do you ship to canada",
    "talk to a real person",
    "hi",
]
LATIN_TRUE = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
LATIN_PRED = [0, 0, 0, 0, 1, 1, 1, 1, 0, 2]  # 7 right; c predicted but never true
ROMAJI = ["chuumon no kakunin onegai", "zaiko arimasu ka", "osusume no manga oshiete"]
JAPANESE = ["注文した本が届かない", "在庫ありますか", "返品したいです", "ありがとう"]
MIXED = ["order 12345 まだ届いてない"]
TEXTS = LATIN + ROMAJI + JAPANESE + MIXED
Y_TRUE = [*LATIN_TRUE, 2, 2, 2, 0, 0, 1, 1, 0]
Y_PRED = [*LATIN_PRED, 2, 2, 2, 0, 1, 1, 2, 1]


def test_slice_metrics_hand_computed():
    m = slice_metrics(Y_TRUE, Y_PRED, TEXTS, None, ["a", "b", "c"])
    assert m["romaji_from"] == "detector"
    rows = {r["slice"]: r for r in m["script"]}
    assert [r["slice"] for r in m["script"]] == ["latin", "romaji", "japanese", "mixed"]
    assert {k: r["n"] for k, r in rows.items()} == {
        "latin": 10,
        "romaji": 3,
        "japanese": 4,
        "mixed": 1,
    }
    latin = rows["latin"]
    assert latin["acc"] == 0.7
    assert (latin["acc_lo"], latin["acc_hi"]) == pytest.approx((0.3968, 0.8922), abs=1e-4)
    # Classes present in the truth: a (P 4/5, R 4/5, F1 0.8) and b (P 3/4, R 3/5, F1 2/3);
    # c, predicted once but never true, is left out (with it the mean would be 0.489).
    assert latin["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert rows["romaji"]["acc"] == 1.0 and rows["romaji"]["macro_f1"] == 1.0
    assert rows["romaji"]["acc_lo"] == pytest.approx(0.4385, abs=1e-4)
    # Japanese 2/4 (true a a b b, predicted a b b c): Wilson 0.150-0.850;
    # a: P 1/1 R 1/2 F1 2/3, b: P 1/2 R 1/2 F1 1/2; macro (2/3 + 1/2) / 2 = 7/12.
    jp = rows["japanese"]
    assert jp["acc"] == 0.5 and (jp["acc_lo"], jp["acc_hi"]) == pytest.approx(
        (0.15, 0.85), abs=1e-3
    )
    assert jp["macro_f1"] == pytest.approx(7 / 12)
    # Mixed 0/1: centre = half-width = (z²/2) / (1 + z²) = 0.3967, so 0-0.7935.
    assert rows["mixed"]["acc"] == 0.0 and rows["mixed"]["acc_hi"] == pytest.approx(
        0.7935, abs=1e-4
    )
    # Every message here is short (<= 8 words).
    lengths = {r["slice"]: r for r in m["length"]}
    assert lengths["short"]["n"] == 18 and lengths["short"]["acc"] == pytest.approx(12 / 18)
    assert lengths["medium"] == {
        "slice": "medium",
        "n": 0,
        "acc": None,
        "acc_lo": None,
        "acc_hi": None,
        "macro_f1": None,
    }


def test_romaji_tags_replace_the_detector():
    tags = [[] for _ in TEXTS]
    tags[0] = ["romaji"]  # a tagged set: "where is my order" is romaji, the others latin
    m = slice_metrics(Y_TRUE, Y_PRED, TEXTS, tags, ["a", "b", "c"])
    rows = {r["slice"]: r["n"] for r in m["script"]}
    assert m["romaji_from"] == "tags" and rows["romaji"] == 1 and rows["latin"] == 12


def test_slice_metrics_bad_input_is_named():
    with pytest.raises(ValueError, match="3 labels, 2 predictions, 3 texts"):
        slice_metrics([0, 1, 1], [0, 1], ["a", "b", "c"], None, ["x", "y"])
    with pytest.raises(ValueError, match="2 tag lists for 3 texts"):
        slice_metrics([0, 1, 1], [0, 1, 1], ["a", "b", "c"], [[], []], ["x", "y"])


def test_eval_slices_line_and_json_from_an_evaluation(tmp_path):
    labels = ["a", "b", "c"]
    logits = np.zeros((len(TEXTS), 3))
    logits[np.arange(len(TEXTS)), Y_PRED] = 5.0  # the model predicts Y_PRED
    ev = evaluate_arrays(logits, np.array(Y_TRUE), labels, texts=TEXTS)
    line = slices_line(ev.metrics["slices"], "tiny")
    assert line == (
        "[EVAL_SLICES] set=tiny latin=70.0(n=10,39.7-89.2) romaji=100.0(n=3,43.9-100.0) "
        "japanese=50.0(n=4,15.0-85.0) mixed=0.0(n=1,0.0-79.3) "
        "short=66.7(n=18,43.7-83.7) medium=na(n=0) long=na(n=0) romaji_from=detector"
    )
    write_evaluation(ev, tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert saved["slices"] == ev.metrics["slices"]
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Script and length slices" in html and "script: romaji" in html
    # No texts: no slices (nothing to slice by), and the report has no such table.
    assert evaluate_arrays(logits, np.array(Y_TRUE), labels).metrics["slices"] is None


def test_doctests():
    result = doctest.testmod(slices, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
