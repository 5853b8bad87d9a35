"""text_preprocess=romaji: Japanese script to Hepburn romaji, pinned by hand, and its checks.

The messages are written for this test (not from the golden set or the phrasing banks); the
expected romaji is written out by hand from the spelling rules in the module docstring.
"""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from mangaassist.data import transliterate
from mangaassist.data.normalize import normalize_text
from mangaassist.data.transliterate import (
    kana_to_romaji,
    normalize_romaji,
    preprocessor,
    to_romaji,
)
from mangaassist.errors import UserError
from mangaassist.inference.tokenize import BatchTokenizer, default_tokenizer_file
from mangaassist.training import config_schema
from mangaassist.training.config_schema import validate_train_config


@pytest.mark.parametrize(
    ("kana", "romaji"),
    [
        ("ちゅうもん", "chuumon"),  # long vowels as typed, no macron (not chūmon)
        ("じょうきょう", "joukyou"),
        ("セール", "seeru"),  # ー repeats the vowel before it
        ("クーポン", "kuupon"),
        ("マッチ", "matchi"),  # っ before ch is t (Hepburn)
        ("きっぷ", "kippu"),
        ("あっ", "a"),  # a final っ has no consonant to double
        ("きんえん", "kin'en"),  # ん before a vowel: n' (not きねん kinen)
        ("ほんや", "hon'ya"),
        ("ぱん", "pan"),  # voicing marks survive: not han
        ("ティー", "tii"),  # extended katakana, as loanwords are typed
        ("フィギュア", "figyua"),
        ("ヴァ", "va"),
        ("ジェ", "je"),
        ("ウォ", "wo"),
        ("を", "wo"),  # the banks' romaji writes the particle wo
        ("ー", "-"),  # a long mark with no vowel before it
        ("kanji 漢", "kanji 漢"),  # not kana: kept
    ],
)
def test_kana_to_romaji_table(kana: str, romaji: str) -> None:
    assert kana_to_romaji(kana) == romaji


@pytest.mark.parametrize(
    ("text", "romaji"),
    [
        # kanji with kana
        ("注文の状況を教えて", "chuumon no joukyou wo oshie te"),
        ("注文まだ?", "chuumon mada?"),
        ("人間と話したい", "ningen to hanashi tai"),
        # katakana loanwords
        ("フィギュアの予約", "figyua no yoyaku"),
        ("カードが使えない", "kaado ga tsukae nai"),
        ("キャンセルお願いします", "kyanseru onegai shimasu"),  # お joined to its word
        # half-width katakana (folded by NFKC, also inside to_romaji)
        ("ｸｰﾎﾟﾝ使えない", "kuupon tsukae nai"),
        # mixed with English, order numbers, volume numbers, emoji
        ("where is 注文 #B7781?", "where is chuumon #B7781?"),
        ("ワンピース12巻の在庫ある?", "wanpiisu 12 kan no zaiko aru?"),
        ("vol.3の表紙が破れてた😢", "vol.3 no hyoushi ga yabure teta 😢"),
        ("ありがとう🙏", "arigatou 🙏"),
        # particles and greetings read as spoken
        ("こんばんは", "konbanwa"),
        # Japanese punctuation to ASCII
        ("返品できますか。", "henpin dekimasuka."),
        ("あの、vol 3", "ano,vol 3"),  # the tokenizer splits "," off either way
        # romaji and English pass through unchanged
        ("osusume manga onegai", "osusume manga onegai"),
        ("kono manga no zaiko aru? #A1234 🙏!!", "kono manga no zaiko aru? #A1234 🙏!!"),
        ("", ""),
    ],
)
def test_to_romaji_examples(text: str, romaji: str) -> None:
    assert to_romaji(text) == romaji
    assert to_romaji(romaji) == romaji  # romaji output is a fixed point


def test_unreadable_characters_are_kept_not_dropped() -> None:
    # pykakasi alone drops characters outside the BMP and repeats its last word instead.
    assert to_romaji("𠮷野家") == "𠮷 noe"
    assert to_romaji("漢字じゃない𩸽") == "kanji janai 𩸽"
    assert to_romaji("龘") == "龘"  # a kanji without a reading in the dictionary


def test_the_preprocessor_normalises_first_and_after() -> None:
    romaji = preprocessor("romaji")
    assert romaji("ＯＮＥ　ＰＩＥＣＥ　１２巻") == "ONE PIECE 12 kan"  # NFKC, then romaji
    assert romaji("注文したのにまだ届かない!!!!!") == "chuumon shitanonimada todoka nai!!!"
    assert romaji("おすすめ。。。。") == "osusume..."  # "。" -> "." joined a run: cut to 3
    assert romaji("where is my order") == "where is my order"


def test_kana_and_kanji_phrasings_reach_the_tokenizer_as_the_romaji_one() -> None:
    tok = BatchTokenizer.from_file(default_tokenizer_file(), 32, preprocess=normalize_romaji)
    plain = BatchTokenizer.from_file(default_tokenizer_file(), 32)
    unk = plain.tokenizer.token_to_id("[UNK]")
    kanji, typed = "注文まだ?", "chuumon mada?"
    assert tok.encode([kanji]) == tok.encode([typed]) == plain.encode([typed])
    # Without the option the kanji are [UNK], and パ/ハ collapse through the uncased normaliser.
    assert unk in plain.encode(["在庫"])[0] and unk not in tok.encode(["在庫"])[0]
    assert plain.encode(["パン"]) == plain.encode(["ハン"])
    assert tok.encode(["パン"]) != tok.encode(["ハン"])


_MIXED = st.text(
    alphabet=st.sampled_from(
        list("あいうえおかがきゃっんーをはへ")
        + list("アイウエオカガキャッンーヴァティ")
        + list("ｱｶﾞﾝｰ")
        + list("注文在庫漢字")
        + list("abc XYZ 0129#?!.,。、「」・〜")
        + ["😊", "🙏", "\u3000", "\n"]
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(_MIXED)
def test_the_romaji_preprocessor_is_idempotent(text: str) -> None:
    once = normalize_romaji(text)
    assert normalize_romaji(once) == once
    assert all(c.isascii() or c in "😊🙏" for c in once)  # no kana or kanji left


def test_none_is_the_training_normalisation_unchanged() -> None:
    assert preprocessor("none") is normalize_text
    assert preprocessor(None) is normalize_text  # a config or manifest without the key
    assert preprocessor("none")("注文  まだ?") == "注文 まだ?"


def test_an_unknown_value_names_the_key_and_the_allowed_values() -> None:
    with pytest.raises(UserError, match=r"data\.module\.text_preprocess='kana' is not allowed"):
        preprocessor("kana")
    with pytest.raises(UserError, match="use one of none, romaji"):
        preprocessor("Romaji")
    cfg = OmegaConf.create({"data": {"module": {"text_preprocess": "kana"}}})
    with pytest.raises(UserError, match=r"data\.module\.text_preprocess=kana .*none, romaji"):
        validate_train_config(cfg)
    validate_train_config(OmegaConf.create({"data": {"module": {"text_preprocess": "romaji"}}}))
    # The config check keeps its own copy of the names (it runs before anything heavy loads).
    assert config_schema.TEXT_PREPROCESSES == transliterate.TEXT_PREPROCESSES


def test_the_module_examples_run_as_written() -> None:
    result = doctest.testmod(transliterate)
    assert result.attempted > 0 and result.failed == 0
