"""The generator's Japanese (script alone, romaji, long) and its "not X, just Y" phrasings."""

from __future__ import annotations

import importlib
import random
import re
import unicodedata

import pytest

from mangaassist.data.audit import is_jp_en_mixed
from mangaassist.data.generator import Corpus, compose, generate, generation_report
from mangaassist.data.generator.corpus import JP_EN_MIXED, LONG_JAPANESE_CHARS, script_mix
from mangaassist.data.generator.phrasings import (
    BACKSTORY_JA,
    BANKS,
    CLOSERS_JA,
    FRAME_PREFIXES_JA,
    FRAME_SUFFIXES_JA,
    JAPANESE_SCRIPT_GREETINGS,
    JAPANESE_SCRIPT_THANKS,
    OPENERS_JA,
    is_japanese_script_only,
    is_romaji,
)
from mangaassist.data.schema import INTENTS

N = 4000
# Each intent's phrasing module, for the lists as written (BANKS merges some of them).
MODULES = {i: importlib.import_module(f"mangaassist.data.generator.phrasings.{i}") for i in INTENTS}
_KANA_KANJI = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN = re.compile("[A-Za-z]")


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return generate(n=N, seed=0)


# ----- the banks ---------------------------------------------------------------------------


def test_every_intent_has_japanese_romaji_long_and_contrast_phrasings() -> None:
    for intent in INTENTS:
        bank, module = BANKS[intent], MODULES[intent]
        assert len(module.NIHONGO) >= 20 and len(module.ROMAJI) >= 14, intent
        assert len(bank.japanese_long) >= 4 and len(bank.contrast) >= 6, intent
        # The script-only pool is the new lines plus the old ones that qualify.
        assert len(bank.japanese_script) >= 50 and len(bank.romaji) >= 45, intent


def test_script_pools_hold_what_their_names_say() -> None:
    for bank in BANKS.values():
        for phrase in (*bank.japanese_script, *bank.japanese_long):
            assert is_japanese_script_only(phrase), phrase
        for phrase in bank.romaji:
            assert not _KANA_KANJI.search(phrase), phrase
    for text in (*JAPANESE_SCRIPT_GREETINGS, *JAPANESE_SCRIPT_THANKS):
        assert not _LATIN.search(text), text


def test_the_script_rules_on_hand_picked_phrasings() -> None:
    assert is_japanese_script_only("{title_jp}の{n}巻ありますか")
    assert is_japanese_script_only("注文番号{order}です")  # digits/# are not letters
    assert not is_japanese_script_only("{title}の在庫")  # {title} fills English names
    assert not is_japanese_script_only("PayPayで払えない")
    assert not is_japanese_script_only("12345")  # no kana/kanji at all
    assert is_romaji("chuumon mada?") and not is_romaji("注文 mada?")


def test_long_japanese_phrasings_run_35_to_90_words() -> None:
    for bank in BANKS.values():
        for phrase in bank.japanese_long:
            letters = len(_KANA_KANJI.findall(phrase))
            # ~2 kana/kanji a word: 70-180 letters is 35-90 words.
            assert 70 <= letters <= 180, (letters, phrase)


def test_new_romaji_lines_are_seen_by_the_audit() -> None:
    # The audit measures jp_en_mixed from the text: a romaji line it misses would be
    # counted as English.
    filler = compose.Filler(random.Random(0))
    for intent in INTENTS:
        for phrase in MODULES[intent].ROMAJI:
            assert is_jp_en_mixed(filler.fill(phrase)), phrase


def test_contrast_lines_negate_and_keep_one_label() -> None:
    # A negation, or "X is fine / I know X": the neighbour's topic is set aside.
    cue = re.compile(r"\b(not|no|don't|doesn't|i know|forget|skip|stop|nothing's|it did|fine)\b")
    owner: dict[str, str] = {}
    for intent in INTENTS:
        bank = BANKS[intent]
        for phrase in (*bank.single, *bank.contrast):
            assert owner.setdefault(phrase.lower(), intent) == intent, phrase
        for phrase in bank.contrast:
            assert cue.search(phrase.lower()) and not _KANA_KANJI.search(phrase), phrase


def test_every_slot_of_the_new_lists_is_fillable() -> None:
    filler = compose.Filler(random.Random(0))
    texts = [*BACKSTORY_JA, *OPENERS_JA, *CLOSERS_JA, *FRAME_PREFIXES_JA, *FRAME_SUFFIXES_JA]
    for bank in BANKS.values():
        texts += [*bank.japanese_long, *bank.contrast]
    for text in texts:
        assert not compose.SLOT.search(filler.fill(text)), text


# ----- compose's Japanese helpers ----------------------------------------------------------


def test_japanese_joins_never_double_the_punctuation() -> None:
    assert compose._ja_join("ありますか？", "あと在庫は？", "。") == "ありますか？あと在庫は？"
    assert compose._ja_join("届きません", "返金は？", "。それと") == "届きません。それと返金は？"
    greeting = compose.add_greeting_japanese("在庫ありますか", "あの、", random.Random(0))
    assert greeting == "あの、在庫ありますか"  # a greeting ending in "、" takes no separator


def test_japanese_spelling_variants_are_consistent_within_a_message() -> None:
    text = "注文した本が届かない。注文番号を教えてください"
    for seed in range(40):
        out = compose.paraphrase_japanese(text, random.Random(seed))
        # One spelling of "注文" per message: both occurrences change together.
        assert out.count("注文") in (0, 2) and out.count("ちゅうもん") in (0, 2), out
        assert ("届" in out) != ("とど" in out), out


def test_japanese_noise_adds_no_latin_letters_and_keeps_the_digits() -> None:
    text = "{n}巻ありますか？"
    for seed in range(200):
        rng = random.Random(seed)
        filled = compose.Filler(rng).fill(text)
        out = compose.roughen_japanese(filled, rng, "product_question")
        assert not _LATIN.search(out), out
        digits = "".join(ch for ch in filled if ch.isdigit())
        assert "".join(ch for ch in unicodedata.normalize("NFKC", out) if ch.isdigit()) == digits


def test_romaji_code_switch_adds_no_kana() -> None:
    for seed in range(200):
        out = compose.code_switch("where is my order please", random.Random(seed), kana=False)
        assert not _KANA_KANJI.search(out) and out != "where is my order please", out


# ----- the corpus mix ----------------------------------------------------------------------


def test_japanese_share_and_script_mix(corpus: Corpus) -> None:
    mix = script_mix(corpus)
    jp = len(corpus.jp_en_mixed)
    assert jp / N == pytest.approx(JP_EN_MIXED, abs=0.005)  # one in nine, as the taxonomy says
    assert mix["japanese_only"] + mix["mixed"] + mix["romaji"] == jp
    assert 0.03 < mix["japanese_only"] / N < 0.05  # ~4% written in Japanese alone
    assert mix["japanese_only_distinct"] > 0.8 * mix["japanese_only"]
    assert mix["romaji"] / N > 0.03 and mix["mixed"] / N > 0.015
    assert mix["long_japanese"] >= 0.002 * N  # long Japanese messages are there
    assert generation_report(corpus, seed=0, n=N)["script_mix"] == mix


def test_every_japanese_message_is_marked_and_long_ones_span_the_intents(
    corpus: Corpus,
) -> None:
    marked = set(corpus.jp_en_mixed)
    long_labels = []
    for ex in corpus.examples:
        kana = len(_KANA_KANJI.findall(ex.text))
        if kana:
            assert ex.id in marked, ex.text  # the bookkeeping sees every Japanese message
        if kana >= LONG_JAPANESE_CHARS and not _LATIN.search(ex.text):
            long_labels.append(ex.label)
    # Long messages in Japanese alone, for (nearly) every intent, not a single-intent tell.
    assert len(long_labels) >= 10 and len(set(long_labels)) >= 5, long_labels


def test_contrast_phrasings_reach_the_corpus(corpus: Corpus) -> None:
    starts = {p.split(",")[0].lower() for bank in BANKS.values() for p in bank.contrast}
    found = [
        ex
        for ex in corpus.examples
        if ex.source == "production" and any(s in ex.text.lower() for s in starts)
    ]
    assert len(found) > 0.01 * N
