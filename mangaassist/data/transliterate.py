"""Japanese script to romaji before tokenising: the ``text_preprocess`` option, in one place.

Through all-MiniLM-L6-v2's uncased WordPiece, a fifth of the tokens of Japanese-only messages
are ``[UNK]`` (many kanji) and the uncased normaliser strips voicing marks (パ -> ハ,
で -> て), so different words collapse. On the 209 Japanese-only messages of a 20,000-message
generated corpus (seed 3) the ``[UNK]`` share is 21.8% with ``none`` and 0.5% with
``romaji`` (what is left: emoji, and a 々 the dictionary split off).

With ``data.module.text_preprocess: romaji`` every run of kana or kanji is written in
Hepburn romaji before the tokenizer sees it, so "注文まだ?" and "chuumon mada?" become one
token sequence (a kana-only "ちゅうもんまだ?" becomes the same letters, "chuumonmada?", but
not the same words: see the known limits below). The default, ``none``, is
:func:`~mangaassist.data.normalize.normalize_text` alone, exactly as before.

:func:`preprocessor` is the one place a name becomes a function. Training (the DataModule),
scoring a run directory, the teacher pass of distillation, the export's tokenizer check and
serving (:class:`~mangaassist.inference.tokenize.BatchTokenizer`, built from the bundle's
manifest) all call it, so a message reaches the tokenizer the same way everywhere.

How the romaji is written (the training banks' own romaji, ``mangaassist/data/generator/``):

- wapuro-style Hepburn without macrons: long vowels are written as typed, おう -> ``ou``,
  うう -> ``uu`` ("chuumon", "joukyou", "arigatou"), and the katakana long mark ー repeats
  the vowel before it (セール -> ``seeru``, クーポン -> ``kuupon``). Macrons (``chūmon``)
  never reach the tokenizer: its uncased normaliser would strip them to ``chumon``, which
  no user or bank line types;
- を -> ``wo``, a standalone particle は -> ``wa`` and へ -> ``e``, ん -> ``n`` (``n'``
  before a vowel or y: きんえん -> ``kin'en``), っ doubles the next consonant (``tch``
  before ``ch``), extended katakana as loanwords are typed (ティー -> ``tii``,
  フィギュア -> ``figyua``, ヴァ -> ``va``);
- words are separated by spaces where pykakasi's dictionary segments them (an honorific
  お/ご is joined to its word: お願い -> ``onegai``), and a romaji run
  is spaced from a neighbouring letter, digit or emoji ("12巻" -> "12 kan");
- Japanese punctuation becomes its ASCII twin (。 -> ".", 、 -> ",", 「」 -> '"', ・ -> " ";
  no space is added after it: the tokenizer splits punctuation off either way), and a
  voicing mark left alone (゛, or ﾞ after no kana) is dropped;
- everything else passes unchanged: Latin text, romaji, digits, order numbers, emoji, ASCII
  punctuation (full-width forms are already folded by NFKC in ``normalize_text``). A kanji
  the dictionary has no reading for, and characters outside the BMP, are kept as they were.

Known limits (pykakasi reads words from a kanji dictionary, with no morphological analysis):
runs of kana are not split into words ("ちゅうもんまだ" -> "chuumonmada", "まだ届かない"
-> "mada todoka nai" only because the kanji starts a word); particles are glued to the kana
that follows ("がまだ" -> "gamada") and は inside such a run stays ``ha`` ("はどこ" ->
"hadoko"); it segments coarser than the banks in places ("ありますか" -> "arimasuka", the
banks' "arimasu ka"); a kanji with several readings gets the dictionary's first (中 -> "naka"
in "セール中", 鬼滅の刃 -> "oni horono ha"). Whether this still beats ``none`` is for the
validation comparison to say; cutlet (below) is the way to better segmentation.

Why pykakasi (2.3.0) and not cutlet: cutlet (MeCab through fugashi, with unidic-lite)
segments better and reads particles right, but installs 252 MB (unidic-lite's dictionary)
and a compiled extension, against pykakasi's 10 MB of pure Python (plus jaconv and
deprecated); measured here on 12 Japanese messages x 1,000 calls, pykakasi took ~35 us a
message and cutlet ~95 us, and both add ~100 MB of resident memory once loaded. pykakasi
drops or repeats characters it has no entry for (emoji, astral kanji), so it only ever sees
runs of BMP kana and kanji here, and its reading (hiragana) is spelt by this module's own
table, which fixes its ティ -> "tei", ジェ -> "jie", ウォ -> "uo" and final っ -> "tsu".

Cost: the dictionary loads once, when the ``romaji`` preprocessor is built (~1 s, ~110 MB
resident), never with ``none``; results are cached per message and per Japanese run. On
1,000 generated corpus messages (36 with Japanese script, the rest English or romaji) the
``romaji`` preprocessor took 16-34 us a message with empty caches and ~8 us warm, against
~7 us for ``normalize_text`` alone (text without Japanese script costs one regex search
more); a message with Japanese script took ~100 us uncached. Measured on 2 cores shared with
a training job, so upper bounds.

Example:
    >>> to_romaji("注文まだ届かない")
    'chuumon mada todoka nai'
    >>> to_romaji("#A1234のキャンセルお願い🙏")
    '#A1234 no kyanseru onegai 🙏'
    >>> to_romaji("where is my order")  # no Japanese script: returned as it is
    'where is my order'
    >>> preprocessor("romaji")("ｷｬﾝｾﾙ  したい。")  # normalise (NFKC), then romaji
    'kyanseru shitai.'
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable

from mangaassist.data.normalize import normalize_text
from mangaassist.errors import UserError

TEXT_PREPROCESSES = ("none", "romaji")
DEFAULT_TEXT_PREPROCESS = "none"
CONFIG_KEY = "data.module.text_preprocess"  # where a run's choice lives in its config.yaml

# Runs pykakasi reads: hiragana (without the combining voicing marks), katakana without the
# middle dot ・ (U+30FB, punctuation), 々 〆, CJK unified ideographs, extension A and the
# compatibility ideographs. Characters outside the BMP are left out: pykakasi drops them.
JAPANESE_RUN = re.compile("[\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u3005\u3006"
                       "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")  # fmt: skip
_PUNCT = {
    "。": ".", "、": ",", "・": " ", "「": '"', "」": '"', "『": '"', "』": '"',
    "\u3099": "", "\u309a": "", "゛": "", "゜": "",  # voicing marks with no kana to voice
    "【": "[", "】": "]", "〔": "(", "〕": ")", "〈": "<", "〉": ">", "《": '"', "》": '"',
    "〜": "~", "〃": '"',
}  # fmt: skip
_PUNCT_TABLE = str.maketrans(_PUNCT)
# Half-width katakana and its punctuation (U+FF61..U+FF9F): folded by NFKC first, as
# normalize_text does, so to_romaji reads them alone too.
_HALF_WIDTH = re.compile("[\uff61-\uff9f]+")
_NEEDS_WORK = re.compile(f"{JAPANESE_RUN.pattern}|{_HALF_WIDTH.pattern}|[{''.join(_PUNCT)}]")

# Whole segments read otherwise than their kana (particles, greetings ending in the particle).
_WORDS = {"は": "wa", "へ": "e", "こんにちは": "konnichiwa", "こんばんは": "konbanwa"}
# pykakasi's standalone honorific prefixes, written joined to the next word as users type them.
_HONORIFIC = {"お": "o", "ご": "go", "御": "go"}

_ROWS = {  # consonant of a row -> its five syllables' kana, vowels a i u e o
    "": "あいうえお", "k": "かきくけこ", "g": "がぎぐげご", "s": "さしすせそ",
    "z": "ざじずぜぞ", "t": "たちつてと", "d": "だぢづでど", "n": "なにぬねの",
    "h": "はひふへほ", "b": "ばびぶべぼ", "p": "ぱぴぷぺぽ", "m": "まみむめも",
    "r": "らりるれろ",
}  # fmt: skip
_HEPBURN = {"si": "shi", "zi": "ji", "ti": "chi", "tu": "tsu", "di": "ji", "du": "zu", "hu": "fu"}
_KANA: dict[str, str] = {
    kana: _HEPBURN.get(c + v, c + v)
    for c, row in _ROWS.items()
    for kana, v in zip(row, "aiueo", strict=True)
}
_KANA.update({
    "や": "ya", "ゆ": "yu", "よ": "yo", "わ": "wa", "ゐ": "i", "ゑ": "e", "を": "wo", "ゔ": "vu",
    "ぁ": "a", "ぃ": "i", "ぅ": "u", "ぇ": "e", "ぉ": "o", "ゃ": "ya", "ゅ": "yu", "ょ": "yo",
    "ゎ": "wa", "ゕ": "ka", "ゖ": "ke", "ヷ": "va", "ヸ": "vi", "ヹ": "ve", "ヺ": "vo",
})  # fmt: skip
# Yoon: き + ゃ -> kya; し/じ/ち/ぢ drop the y (sha, ja, cha).
_YOON_STEMS = {
    "き": "ky", "ぎ": "gy", "し": "sh", "じ": "j", "ち": "ch", "ぢ": "j",
    "に": "ny", "ひ": "hy", "び": "by", "ぴ": "py", "み": "my", "り": "ry",
}  # fmt: skip
_KANA.update({
    kana + small: stem + v
    for kana, stem in _YOON_STEMS.items()
    for small, v in zip("ゃゅょ", "auo", strict=True)
})  # fmt: skip
_KANA.update({  # extended kana of loanwords, as they are typed
    "しぇ": "she", "じぇ": "je", "ちぇ": "che", "てぃ": "ti", "でぃ": "di", "とぅ": "tu",
    "どぅ": "du", "てゅ": "tyu", "でゅ": "dyu", "ふぁ": "fa", "ふぃ": "fi", "ふぇ": "fe",
    "ふぉ": "fo", "ふゅ": "fyu", "うぃ": "wi", "うぇ": "we", "うぉ": "wo", "ゔぁ": "va",
    "ゔぃ": "vi", "ゔぇ": "ve", "ゔぉ": "vo", "ゔゅ": "vyu", "つぁ": "tsa", "つぃ": "tsi",
    "つぇ": "tse", "つぉ": "tso", "いぇ": "ye", "くぁ": "kwa", "ぐぁ": "gwa", "すぃ": "si",
    "ずぃ": "zi",
})  # fmt: skip
_VOWELS = "aeiou"


def _to_hiragana(text: str) -> str:
    # Katakana U+30A1..U+30F6 sit 0x60 above their hiragana; ー and ヷ-ヺ stay (own entries).
    return "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in text)


def kana_to_romaji(kana: str) -> str:
    """Hepburn romaji of a kana string (hiragana or katakana); other characters are kept.

    Example:
        >>> kana_to_romaji("ちゅうもん"), kana_to_romaji("セール"), kana_to_romaji("マッチ")
        ('chuumon', 'seeru', 'matchi')
    """
    kana = _to_hiragana(kana)
    out: list[str] = []  # one romaji syllable (or kept character) per item
    i, double_next = 0, False
    while i < len(kana):
        pair, char = kana[i : i + 2], kana[i]
        if pair in _KANA:
            syl, i = _KANA[pair], i + 2
        elif char in ("っ", "ッ"):
            double_next, i = True, i + 1  # resolved by the next syllable; dropped if none
            continue
        elif char == "ん":
            syl, i = "n", i + 1
        elif char == "ー":
            prev = out[-1][-1:] if out else ""
            syl, i = (prev if prev in _VOWELS and prev else "-"), i + 1
        else:
            syl, i = _KANA.get(char, char), i + 1
        if double_next:
            double_next = False
            if syl[:2] == "ch":
                syl = "t" + syl
            elif syl[:1].isascii() and syl[:1].isalpha() and syl[0] not in _VOWELS + "n":
                syl = syl[0] + syl
        if out and out[-1] == "n" and syl[:1] in (*_VOWELS, "y"):
            out[-1] = "n'"  # きんえん kin'en, not kinen (きねん)
        out.append(syl)
    return "".join(out)


@functools.cache
def _kakasi():  # -> pykakasi.kakasi, loaded once (~1 s, ~105 MB) and only when romaji is on
    import pykakasi

    return pykakasi.kakasi()


def segments(run: str) -> list[tuple[str, str]]:
    """pykakasi's (surface, hiragana reading) segments of a run of Japanese script."""
    segs = [(s["orig"], s["hira"]) for s in _kakasi().convert(run)]
    if "".join(orig for orig, _ in segs) == run:
        return segs
    # pykakasi lost or repeated a character (it does on ones it has no entry for): read the
    # run one character at a time instead, keeping any character it cannot read.
    return [(c, next(iter(_kakasi().convert(c)), {"hira": c})["hira"]) for c in run]


@functools.lru_cache(maxsize=1 << 16)
def _run_to_romaji(run: str) -> str:
    words, prefix = [], ""
    for orig, reading in segments(run):
        if orig in _HONORIFIC:  # お願い -> "onegai", ご注文 -> "gochuumon", not "o negai"
            prefix += _HONORIFIC[orig]
            continue
        # An empty reading (a kanji without an entry) keeps the kanji as it was.
        words.append(prefix + (_WORDS.get(orig) or kana_to_romaji(reading or orig)))
        prefix = ""
    return " ".join(w for w in [*words, prefix] if w)


def _spaced(char: str) -> bool:
    """Whether romaji next to ``char`` needs a space (a letter, digit, emoji: not space or
    punctuation), so "12巻" becomes "12 kan" and not one word "12kan"."""
    return bool(char) and not char.isspace() and not unicodedata.category(char).startswith("P")


@functools.lru_cache(maxsize=1 << 15)
def to_romaji(text: str) -> str:
    """Write each run of Japanese script in ``text`` in Hepburn romaji; the rest is kept.

    See the module docstring for the spelling. ``to_romaji(to_romaji(x)) == to_romaji(x)``
    for any text with no kanji that the dictionary cannot read.

    Example:
        >>> to_romaji("ワンピース12巻ある?")
        'wanpiisu 12 kan aru?'
    """
    if not _NEEDS_WORK.search(text):
        return text  # the common case: no Japanese script at all
    text = _HALF_WIDTH.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), text)
    text = text.translate(_PUNCT_TABLE)
    pieces, end = [], 0
    for match in JAPANESE_RUN.finditer(text):
        start, stop = match.span()
        romaji = _run_to_romaji(match.group(0))
        before, after = text[start - 1 : start], text[stop : stop + 1]
        pieces += [
            text[end:start],
            " " if _spaced(before) else "",
            romaji,
            " " if _spaced(after) else "",
        ]
        end = stop
    pieces.append(text[end:])
    return " ".join("".join(pieces).split())  # "・" -> " " may leave a space to collapse


def normalize_romaji(text: str) -> str:
    """The ``romaji`` preprocessor: :func:`normalize_text`, :func:`to_romaji`, normalise again
    (the romaji may join punctuation into a longer run: "ね。..." -> "ne...."); the second
    pass is skipped for text without Japanese script, most messages."""
    text = normalize_text(text)
    out = to_romaji(text)
    return text if out == text else normalize_text(out)


_PREPROCESSORS: dict[str, Callable[[str], str]] = {
    "none": normalize_text,
    "romaji": normalize_romaji,
}


def check_text_preprocess(name: object, where: str = CONFIG_KEY) -> str:
    """The preprocessing name, checked: None is ``none``; anything unknown is refused.

    Args:
        name: the configured value.
        where: what to call it in the error (a config key, a manifest file and key).

    Raises:
        UserError: ``name`` is not one of :data:`TEXT_PREPROCESSES`.
    """
    if name is None:
        return DEFAULT_TEXT_PREPROCESS
    if not isinstance(name, str) or name not in _PREPROCESSORS:
        raise UserError(
            f"{where}={name!r} is not allowed: use one of {', '.join(TEXT_PREPROCESSES)} "
            "(none: normalize_text only; romaji: also Japanese script to Hepburn romaji)"
        )
    return name


def preprocessor(name: str | None, where: str = CONFIG_KEY) -> Callable[[str], str]:
    """The text function applied before tokenising: ``none`` or ``romaji``.

    ``romaji`` loads pykakasi's dictionary now (~1 s), so a server pays it at load and not
    on its first Japanese request.

    Args:
        name: a value of :data:`TEXT_PREPROCESSES` (None: ``none``).
        where: names the setting in the error for a bad value.

    Returns:
        ``normalize_text`` for ``none``; :func:`normalize_romaji` for ``romaji``.

    Raises:
        UserError: an unknown name (the message names ``where`` and the allowed values).

    Example:
        >>> preprocessor("none")("ちゅうもん  まだ")
        'ちゅうもん まだ'
        >>> preprocessor("romaji")("ちゅうもん  まだ")
        'chuumon mada'
    """
    name = check_text_preprocess(name, where)
    if name == "romaji":
        _kakasi()
    return _PREPROCESSORS[name]
