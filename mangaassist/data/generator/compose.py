"""Turn a phrasing into a message: fill slots, then add what real users add.

Everything here takes a seeded ``random.Random`` and nothing else random, so the same seed
gives the same text. The pieces, in the order the generator applies them:

- :class:`Filler` fills ``{title}``, ``{order}``... from the lexicons, remembering a
  conversation's title and order number so later turns can refer back to them.
- :func:`code_switch` mixes Japanese (romaji or kana/kanji) into an English message.
- :func:`paraphrase_japanese`, :func:`frame_japanese`, :func:`ramble_japanese` and
  :func:`roughen_japanese` do for a message written in Japanese alone what their English
  twins do, without adding a Latin letter.
- :func:`join_intents` glues the parts of a multi-intent message together.
- :func:`ramble` wraps an ask in backstory (the long tail of message lengths).
- :func:`roughen` adds casing, typos, abbreviations, slang, emoji and sloppy punctuation.
- :func:`resend_variant` makes the exact or near-duplicate of a re-sent message.
- :func:`polish` and :func:`corrupt` make the synthetic source clean, then sometimes broken.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from itertools import accumulate

from mangaassist.data.generator import lexicon as lx
from mangaassist.data.generator.phrasings import (
    BACKSTORY,
    BACKSTORY_JA,
    CLOSERS,
    CLOSERS_JA,
    FRAME_PREFIXES_JA,
    FRAME_SUFFIXES_JA,
    OPENERS,
    OPENERS_JA,
)

SLOT = re.compile(r"\{(\w+)\}")

# Slots whose value a conversation keeps: a user asking about "my order" twice means one order.
REMEMBERED = ("title", "order", "tracking", "carrier", "country", "city", "relative", "payment")
REUSE_P = 0.6  # chance a later turn reuses the remembered value instead of a new one

_POPULAR = frozenset(lx.POPULAR_TITLES)
_TITLE_CUM_WEIGHTS = list(accumulate(4.0 if t[0] in _POPULAR else 1.0 for t in lx.TITLES))
_JP_TITLES = [t for t in lx.TITLES if t[2]]
_VOL_FORMS = ("vol {n}", "vol. {n}", "volume {n}", "v{n}", "v.{n}", "vol{n}", "#{n}", "book {n}")
_PRICES = (
    "$10", "$15", "$20", "$25", "$30", "$40", "$50", "$60", "$75", "$100", "$150", "$200",
    "20 bucks", "50 bucks", "30 dollars", "£20", "£30", "€25", "€40", "3000 yen", "5000 yen",
    "$12.99", "$49.99",
)  # fmt: skip
_DATES = (
    "last monday", "monday", "the 3rd", "the 12th", "the 28th", "march 3", "april 19",
    "jan 9", "2 weeks ago", "last week", "yesterday", "friday", "12/03", "3/14", "10 days ago",
)  # fmt: skip


def _geometric_cum_weights(ratio: float, size: int) -> list[float]:
    # Products and sums only: transcendental functions (exp, log, pow) may differ in the last
    # bit between C libraries, and the corpus must be byte-identical on any machine.
    cum, weight, total = [], 1.0, 0.0
    for _ in range(size):
        total += weight
        cum.append(total)
        weight *= ratio
    return cum


_VOLUMES = range(1, 41)
_VOLUME_CUM_WEIGHTS = _geometric_cum_weights(5 / 6, len(_VOLUMES))


def _vol_number(rng: random.Random) -> int:
    # Most questions are about early or recent volumes of short series: mean ~6, tail to 40.
    return rng.choices(_VOLUMES, cum_weights=_VOLUME_CUM_WEIGHTS)[0]


def _order_number(rng: random.Random) -> str:
    form = rng.randrange(6)
    if form == 0:
        return f"#{rng.choice(lx.ORDER_PREFIXES)}{rng.randrange(1000, 99999)}"
    if form == 1:
        return f"#{rng.randrange(10000, 999999)}"
    if form == 2:
        return f"113-{rng.randrange(10**6, 10**7)}-{rng.randrange(10**6, 10**7)}"
    if form == 3:
        return f"MA-2025-{rng.randrange(10**5, 10**6)}"
    if form == 4:
        return f"{rng.choice(lx.ORDER_PREFIXES)}{rng.randrange(1000, 99999)}"
    return str(rng.randrange(10000, 9999999))


def _tracking_number(rng: random.Random) -> str:
    form = rng.randrange(4)
    if form == 0:  # UPS
        return f"1Z{rng.randrange(10**15, 10**16)}"
    if form == 1:  # USPS
        return str(rng.randrange(10**21, 10**22))
    if form == 2:  # Japan Post / Royal Mail style
        return f"E{rng.choice('JKMR')}{rng.randrange(10**8, 10**9)}{rng.choice(('JP', 'GB'))}"
    return f"JD{rng.randrange(10**15, 10**16)}"  # DHL


class Filler:
    """Fills ``{slot}`` placeholders from the lexicons.

    One Filler per conversation: values in :data:`REMEMBERED` slots are kept, so a follow-up
    turn often names the same title or order as the turn before it.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.memory: dict[str, str] = {}
        self._fillers: dict[str, Callable[[], str]] = {
            "title": self._title,
            "title2": self._title,
            "title3": self._title,
            "title_jp": self._title_jp,
            "author": self._author,
            "author_jp": self._author_jp,
            "genre": lambda: rng.choice(lx.GENRES),
            "genre2": lambda: rng.choice(lx.GENRES),
            "demo": lambda: rng.choice(lx.DEMOGRAPHICS),
            "demo2": lambda: rng.choice(lx.DEMOGRAPHICS),
            "format": lambda: rng.choice(lx.FORMATS),
            "merch": lambda: rng.choice(lx.MERCH),
            "publisher": lambda: rng.choice(lx.PUBLISHERS),
            "character": lambda: rng.choice(lx.CHARACTERS),
            "character2": lambda: rng.choice(lx.CHARACTERS),
            "vol": self._vol,
            "vol2": self._vol,
            "n": lambda: str(_vol_number(rng)),
            "ch": lambda: str(rng.randrange(1, 1150)),
            "order": lambda: _order_number(rng),
            "tracking": lambda: _tracking_number(rng),
            "carrier": lambda: rng.choice(lx.CARRIERS),
            "country": lambda: rng.choice(lx.COUNTRIES),
            "city": lambda: rng.choice(lx.CITIES),
            "payment": lambda: rng.choice(lx.PAYMENT_METHODS),
            "price": lambda: rng.choice(_PRICES),
            "pct": lambda: str(rng.choice((10, 15, 20, 25, 30, 40, 50))),
            "code": lambda: rng.choice(lx.COUPON_CODES),
            "age": lambda: str(rng.randrange(6, 18)),
            "days": lambda: str(rng.randrange(2, 31)),
            "date": lambda: rng.choice(_DATES),
            "month": lambda: rng.choice(lx.MONTHS),
            "weekday": lambda: rng.choice(lx.WEEKDAYS),
            "relative": lambda: rng.choice(lx.RELATIVES),
            "store": lambda: rng.choice(lx.OTHER_STORES),
        }

    def _title(self) -> str:
        name, aliases, _ = self.rng.choices(lx.TITLES, cum_weights=_TITLE_CUM_WEIGHTS)[0]
        if aliases and self.rng.random() < 0.35:
            return self.rng.choice(aliases)
        return name

    def _title_jp(self) -> str:
        name, aliases, jp = self.rng.choice(_JP_TITLES)
        roll = self.rng.random()
        if roll < 0.7:
            return jp
        return self.rng.choice(aliases) if aliases and roll < 0.85 else name

    def _author(self) -> str:
        name, aliases, _ = self.rng.choice(lx.AUTHORS)
        return self.rng.choice(aliases) if aliases and self.rng.random() < 0.3 else name

    def _author_jp(self) -> str:
        name, _, jp = self.rng.choice(lx.AUTHORS)
        return jp if jp and self.rng.random() < 0.75 else name

    def _vol(self) -> str:
        return self.rng.choice(_VOL_FORMS).format(n=_vol_number(self.rng))

    def value(self, slot: str) -> str:
        """A value for one slot, reusing the conversation's remembered value sometimes."""
        if slot in REMEMBERED and slot in self.memory and self.rng.random() < REUSE_P:
            return self.memory[slot]
        value = self._fillers[slot]()
        if slot in REMEMBERED:
            self.memory[slot] = value
        return value

    def fill(self, template: str, keep: str = "") -> str:
        """Fill every slot of ``template``; a slot named ``keep`` stays as literal text.

        Raises:
            KeyError: the template uses a slot no lexicon fills.
        """
        used: list[str] = []

        def one(match: re.Match[str]) -> str:
            slot = match.group(1)
            if slot == keep:
                return match.group(0)
            value = self.value(slot)
            # "{title} or {title2}" must name two different titles (and "{vol}"/"{vol2}" too).
            for _ in range(5):
                if value not in used:
                    break
                value = self._fillers[slot]()
            used.append(value)
            return value

        text = SLOT.sub(one, template)
        return text.replace("the The ", "the ").replace("The The ", "The ")


# ----- Japanese mixing ---------------------------------------------------------------------

# English word -> what a code-switching user types instead (romaji or kana/kanji).
_CODE_SWITCH: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"\bnew volumes?\b", ("shinkan", "新刊", "saishin-kan")),
    (r"\brecommend(?:ations)?\b", ("osusume", "おすすめ")),
    (r"\brecs\b", ("osusume",)),
    (r"\bmanga\b", ("漫画", "manga", "マンガ")),
    (r"\bin stock\b", ("zaiko aru", "在庫ある")),
    (r"\bstock\b", ("zaiko", "在庫")),
    (r"\border\b", ("chuumon", "注文")),
    (r"\bpackage\b", ("nimotsu", "荷物")),
    (r"\bplease\b|\bpls\b", ("onegai", "お願い", "onegaishimasu")),
    (r"\brefund\b", ("henkin", "返金")),
    (r"\breturn\b", ("henpin", "返品")),
    (r"\bcancel\b", ("kyanseru", "キャンセル")),
    (r"\bsales?\b", ("seeru", "セール")),
    (r"\bcoupon\b", ("kuupon", "クーポン")),
    (r"\bshipping\b", ("hassou", "発送", "souryou")),
    (r"\bhow much\b", ("ikura", "いくら")),
    (r"\bwhere is\b|\bwhere's\b", ("doko", "どこ")),
    (r"\bvolume\b", ("kan", "巻")),
    (r"\bpreorder\b", ("yoyaku", "予約")),
    (r"\bthanks\b|\bthank you\b", ("arigatou", "ありがとう")),
    (r"\bhuman\b", ("ningen", "人間")),
    (r"\bbox set\b", ("zenkan setto", "全巻セット")),
    (r"\bfinished\b|\bcomplete\b", ("kanketsu", "完結")),
    (r"\bcute\b", ("kawaii",)),
    (r"\bamazing\b", ("sugoi", "すごい")),
)  # fmt: skip
_CODE_SWITCH_RE = [(re.compile(p), alts) for p, alts in _CODE_SWITCH]
_JP_SUFFIXES = (
    " desu ka?",
    " ne",
    " onegai",
    " onegaishimasu",
    " kudasai",
    "。",
    " kana",
    " da yo",
)
_JP_PREFIXES = ("sumimasen, ", "あの、", "ano, ", "chotto ")
_ROMAJI_PREFIXES = ("sumimasen, ", "ano, ", "chotto ", "ano sa, ")


def code_switch(text: str, rng: random.Random, kana: bool = True) -> str:
    """Mix Japanese into an English message, as bilingual users do mid-sentence.

    Swaps some words for romaji or kana/kanji and may add a particle or a polite opener; at
    least one Japanese piece is always present, so the result really is mixed. With
    ``kana=False`` (a user who types Japanese in Latin letters) only romaji is used.
    """
    out = text
    swapped = False
    for pattern, alts in _CODE_SWITCH_RE:
        if rng.random() < 0.6 and pattern.search(out):
            pool = alts if kana else tuple(a for a in alts if a.isascii())
            out = pattern.sub(rng.choice(pool), out, count=1)
            swapped = True
    if not swapped or rng.random() < 0.4:
        out = out.rstrip("?.!") + rng.choice(_JP_SUFFIXES)
    if rng.random() < 0.15:
        out = rng.choice(_JP_PREFIXES if kana else _ROMAJI_PREFIXES) + out
    return out


# ----- Japanese written alone --------------------------------------------------------------

# How a Japanese writer glues a second ask on ("…ありますか？あと、…"): no Latin letters.
JA_CONNECTORS = (
    "。あと、", "、あと", "。それと", "！それと、", "\n", "。\nあと", "。それから、", "、ついでに",
    " あと ", "。", "？あと", "。もう一つ、",
)  # fmt: skip
_JA_SEPARATORS = ("", "、", "！", "。", "\n", " ")
_JA_END = "。、！？!?…"

# Kana/kanji variants of the same word (IME choices, or a writer who spells it in kana):
# (pattern, alternatives, original included). Each rule fires on every match, or on none,
# so one message spells a word one way.
_JA_VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"(?<!ご)注文", ("注文", "ちゅうもん", "オーダー")),
    (r"届", ("届", "とど")),
    (r"在庫", ("在庫", "ざいこ")),
    (r"予約", ("予約", "よやく")),
    (r"返品", ("返品", "へんぴん")),
    (r"交換", ("交換", "こうかん")),
    (r"教えて", ("教えて", "おしえて")),
    (r"ください", ("ください", "下さい")),
    (r"漫画", ("漫画", "マンガ", "まんが")),
    (r"大丈夫", ("大丈夫", "だいじょうぶ")),
    (r"欲しい", ("欲しい", "ほしい")),
    (r"分か(?=[らりるれろっ])", ("分か", "わか")),
    (r"出来", ("出来", "でき")),
    (r"面白", ("面白", "おもしろ")),
    (r"確認", ("確認", "かくにん")),
    (r"一番", ("一番", "いちばん")),
    (r"クレジットカード", ("クレジットカード", "クレカ")),
    (r"送料(?!無料)", ("送料", "そうりょう")),
    (r"何冊", ("何冊", "なん冊")),
    (r"今日", ("今日", "きょう")),
)  # fmt: skip
_JA_VARIANTS_RE = [(re.compile(p), alts) for p, alts in _JA_VARIANTS]
JA_VARIANT_P = 0.3  # chance each matching rule respells its word

# Half-width -> full-width punctuation and digits, as a Japanese IME types them ("１２巻？").
_FULLWIDTH_PUNCT = str.maketrans({"?": "？", "!": "！", "(": "（", ")": "）", "#": "＃"})
_HALFWIDTH_PUNCT = str.maketrans({"？": "?", "！": "!"})
_FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
_JA_EMOJI = ("🙏", "😭", "💦", "(泣)", "（笑）", "笑", "😅", "🥺", "(；；)", "(>_<)", "✨", "🙇")
_JA_ANGRY = ("😡", "💢", "！！！", "😤", "🤬")


def paraphrase_japanese(text: str, rng: random.Random) -> str:
    """Respell words the ways Japanese users type them (注文/ちゅうもん, 届く/とどく)."""
    for pattern, alts in _JA_VARIANTS_RE:
        if rng.random() < JA_VARIANT_P and pattern.search(text):
            text = pattern.sub(rng.choice(alts), text)
    return text


def _ja_join(left: str, right: str, glue: str) -> str:
    """``left`` + ``glue`` + ``right``, without doubled punctuation ("？。")."""
    left = left.rstrip()
    if left[-1:] in _JA_END and glue[:1] in _JA_END:
        glue = glue[1:]
    return left + glue + right


def join_intents_japanese(main: str, others: list[str], rng: random.Random) -> str:
    """:func:`join_intents` for Japanese: the labelled ask first 60% of the time, glued with
    :data:`JA_CONNECTORS` ("…ありますか？あと、…")."""
    parts = [main, *others]
    if rng.random() >= 0.6:
        rng.shuffle(parts)
    text = parts[0]
    for part in parts[1:]:
        text = _ja_join(text, part, rng.choice(JA_CONNECTORS))
    return text


def add_greeting_japanese(text: str, greeting: str, rng: random.Random) -> str:
    """Prefix a Japanese greeting ("こんにちは！…"); one ending in "、" takes no separator."""
    sep = "" if greeting[-1:] in _JA_END else rng.choice(_JA_SEPARATORS)
    return greeting + sep + text


def add_thanks_japanese(text: str, thanks: str, rng: random.Random) -> str:
    """Suffix a Japanese thanks ("…ありますか？よろしくお願いします")."""
    return _ja_join(text, thanks, rng.choice(_JA_SEPARATORS))


def frame_japanese(text: str, rng: random.Random) -> str:
    """Wrap an ask in a Japanese opener or closer that carries no intent ("確認なんですが、…")."""
    roll = rng.random()
    if roll < 0.15:
        return rng.choice(FRAME_PREFIXES_JA) + rng.choice(("、", "。", " ", "！", "\n")) + text
    if roll < 0.3:
        return _ja_join(text, rng.choice(FRAME_SUFFIXES_JA), rng.choice(("。", "、", " ", "\n")))
    return text


_JA_GLUE = ("。", "。", "。\n", "！", "…", "、", "\n")


def ramble_japanese(core: str, rng: random.Random, filler: Filler, sentences: int) -> str:
    """:func:`ramble` for Japanese: ``sentences`` of backstory (:data:`BACKSTORY_JA`) around
    the ask; three or more make a message of 35-90 words (a word ~2 kana/kanji)."""
    story = [filler.fill(s) for s in rng.sample(BACKSTORY_JA, sentences)]
    # Most writers explain first and ask last (the Japanese habit); some ask, then explain.
    cut = sentences if rng.random() < 0.7 else rng.randrange(0, sentences)
    pieces = [*story[:cut], core, *story[cut:]]
    if sentences > 1 and rng.random() < 0.4:
        pieces.insert(0, rng.choice(OPENERS_JA))
    if sentences > 1 and rng.random() < 0.4:
        pieces.append(rng.choice(CLOSERS_JA))
    habit = rng.choice(_JA_GLUE)
    text = pieces[0]
    for piece in pieces[1:]:
        text = _ja_join(text, piece, habit if rng.random() < 0.7 else rng.choice(_JA_GLUE))
    return text


def roughen_japanese(text: str, rng: random.Random, intent: str) -> str:
    """:func:`roughen` for Japanese: IME punctuation and digits, dropped or doubled endings,
    emoji and kaomoji. Escalation gets the angry ones more often; no Latin letter is added."""
    roll = rng.random()
    if roll < 0.45:
        text = text.translate(_FULLWIDTH_PUNCT)
    elif roll < 0.6:
        text = text.translate(_HALFWIDTH_PUNCT)
    if rng.random() < 0.3:
        text = text.translate(_FULLWIDTH_DIGITS)
    roll, bare = rng.random(), text.rstrip(_JA_END + " ")
    if roll < 0.3 and bare and bare != text:  # "届きますか？" -> "届きますか"
        text = bare
    elif roll < 0.42 and bare:  # another ending: "届きますか？？", "届きますかー"
        text = bare + rng.choice(("？", "？？", "！", "…", "。", "!!", "ー", "〜", "？！"))
    angry = intent == "escalation" and rng.random() < 0.6
    if rng.random() < (0.15 if angry else 0.09):
        text = text.rstrip() + rng.choice(_JA_ANGRY if angry else _JA_EMOJI)
    return text.strip() or text


# ----- multi-intent and long messages ------------------------------------------------------

_CONNECTORS = (
    " also ", ". also ", ", also ", " and ", ", and ", " + ", " btw ", ". btw ", ". oh and ",
    " - ", "\n", "... ", ". ", " ", " plus ", ", ", ". and ", " & ", " also, ", "? and ",
)  # fmt: skip
_GREETING_SEPARATORS = (" ", ", ", "! ", ". ", "\n", " - ", "!! ")
_THANKS_SEPARATORS = (" ", ", ", ". ", "! ", " ... ", "\n")


def join_intents(main: str, others: list[str], rng: random.Random) -> str:
    """Glue the asks of a multi-intent message; the labelled ask comes first 60% of the time."""
    parts = [main, *others]
    if rng.random() >= 0.6:
        rng.shuffle(parts)
    text = parts[0]
    for part in parts[1:]:
        text = text.rstrip() + rng.choice(_CONNECTORS) + part
    return text


def add_greeting(text: str, greeting: str, rng: random.Random) -> str:
    """Prefix a greeting ("hi! where's my order")."""
    return greeting + rng.choice(_GREETING_SEPARATORS) + text


def add_thanks(text: str, thanks: str, rng: random.Random) -> str:
    """Suffix a thanks ("where's my order? thanks")."""
    return text.rstrip() + rng.choice(_THANKS_SEPARATORS) + thanks


_RAMBLE_GLUE = (". ", ", ", " and ", "... ", " so ", "\n", ". ", " - ", ". also ")


def ramble(core: str, rng: random.Random, filler: Filler, sentences: int) -> str:
    """Wrap an ask in ``sentences`` sentences of backstory (plus an opener and a closer).

    One sentence makes a message with a little context; six or more make the rambling
    messages that run past 128 WordPiece tokens.
    """
    story = [filler.fill(s) for s in rng.sample(BACKSTORY, sentences)]
    if sentences == 1:
        if rng.random() < 0.75:
            return story[0] + rng.choice((". ", ", ", " so ", " - ")) + core
        return core.rstrip("?.! ") + rng.choice((". ", ", ")) + story[0]
    # Most people get to the point last; some ask first and explain after.
    cut = sentences if rng.random() < 0.6 else rng.randrange(0, sentences)
    pieces = [*story[:cut], core, *story[cut:]]
    if rng.random() < 0.5:
        pieces.insert(0, rng.choice(OPENERS))
    if rng.random() < 0.5:
        pieces.append(rng.choice(CLOSERS))
    habit = rng.choice(_RAMBLE_GLUE)  # each writer has a favourite join, and strays from it
    text = pieces[0].rstrip(".")
    for piece in pieces[1:]:
        text += (habit if rng.random() < 0.7 else rng.choice(_RAMBLE_GLUE)) + piece.rstrip(".")
    return text


# ----- paraphrase ----------------------------------------------------------------------

# Meaning-preserving rewrites: the same ask worded the many ways people word it. Each rule
# lists its alternatives, the original included, and fires on its first match only.
_REWRITES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"\bdo you have\b", ("do u have", "do you guys have", "do yall have", "have you got",
                         "you have", "do you have")),
    (r"\bcan you\b", ("could you", "can u", "can you please", "would you", "can you")),
    (r"\bcan i\b", ("could i", "can i", "am i able to", "is it possible to", "can i still")),
    (r"\bi want to\b", ("i'd like to", "i wanna", "i need to", "i would like to", "i want to")),
    (r"\bi want\b(?! to)", ("i'd like", "i need", "i want", "i would like")),
    (r"\bwhere is\b", ("where's", "wheres", "where is", "where tf is")),
    (r"\bwhat is\b|\bwhat's\b", ("what's", "whats", "what is", "wat is")),
    (r"\bhow do i\b", ("how can i", "how do i", "how would i", "whats the way to", "how to")),
    (r"\bis there\b(?! an? )", ("is there", "is there any", "r there any", "are there any")),
    (r"\bshow me\b", ("show me", "can you show me", "pls show me", "i want to see", "lemme see",
                     "let me see")),
    (r"\bmy order\b", ("my order", "my recent order", "my last order", "the order i placed",
                      "my purchase")),
    (r"\bmy package\b", ("my package", "my parcel", "the package", "my box", "my delivery")),
    (r"\bwhen will\b", ("when will", "when's", "when would", "when do you think")),
    (r"\bwhen does\b", ("when does", "when's", "when will")),
    (r"\bshould i read\b", ("should i read", "should i pick up", "should i start", "should i try")),
    (r"\bsomething\b", ("something", "smth", "anything")),
    (r"\bi loved\b", ("i loved", "i really liked", "i enjoyed", "i was obsessed with", "i adored")),
    (r"\bright now\b", ("right now", "rn", "atm", "currently", "at the moment")),
    (r"\bhasn't\b", ("hasn't", "hasnt", "has not")),
    (r"\bdoesn't\b", ("doesn't", "doesnt", "does not")),
    (r"\bisn't\b", ("isn't", "isnt", "is not")),
    (r"\bwon't\b", ("won't", "wont", "will not")),
    (r"\bi've\b", ("i've", "ive", "i have")),
    (r"\bbox set\b", ("box set", "boxset", "box-set", "box set")),
    (r"\bvolumes\b", ("volumes", "vols", "books")),
    (r"\bin stock\b", ("in stock", "available", "in-stock")),
    (r"\bcoupon code\b", ("coupon code", "promo code", "discount code", "voucher code", "code")),
    (r"\bshipping\b", ("shipping", "delivery")),
    (r"\barrive\b", ("arrive", "get here", "come", "be delivered", "show up")),
    (r"\bwhat should i\b", ("what should i", "what do i", "what can i")),
    (r"\bplease\b", ("please", "pls", "plz", "pleasee")),
    (r"\bthe site\b", ("the site", "the website", "your site", "the app")),
    (r"\bbuy\b", ("buy", "get", "purchase", "order")),
    (r"\bi think\b", ("i think", "i guess", "i believe")),
    (r"\bmanga\b", ("manga", "mangas", "manga series", "manga")),
)  # fmt: skip
_REWRITES_RE = [(re.compile(p), alts) for p, alts in _REWRITES]
REWRITE_P = 0.5  # chance each matching rule fires

# Openers and closers that add nothing to the ask; no greetings or thanks (those are chitchat).
_FRAME_PREFIXES = (
    "quick question", "quick q", "question", "so", "um", "ok so", "i was wondering",
    "just wondering", "can i ask", "random question but", "sorry to bother but",
    "one more thing", "also", "and", "so like", "real quick", "idk if you can help but",
    "not sure if this is the right place but", "i have a question", "need help", "help",
    "pls help", "hmm", "wait", "ok", "oh and", "actually", "sorry", "question for you",
    "another question", "umm", "ok another thing", "alright so",
)  # fmt: skip
_FRAME_SUFFIXES = (
    "please", "pls", "plz", "asap", "real quick", "when you get a chance", "rn", "lol", "haha",
    "idk", "btw", "by any chance", "for real", "just asking", "sorry", "??", "lmk",
    "let me know", "any idea",
)  # fmt: skip
_TAIL_JOINS = (", ", " - ", " ", ". ", " (", "... ", " | ", ": ")


def paraphrase(text: str, rng: random.Random) -> str:
    """Reword an ask without changing it: each matching rewrite fires half the time."""
    for pattern, alts in _REWRITES_RE:
        if rng.random() < REWRITE_P and pattern.search(text):
            text = pattern.sub(rng.choice(alts), text, count=1)
    return text


def add_tail(text: str, tail: str, rng: random.Random) -> str:
    """Tack a detail onto an ask ("where is it" -> "where is it, order #A1234")."""
    core = text.rstrip(" ?!.")
    if core != text.rstrip() and rng.random() < 0.5:  # "where is it? order #A1234"
        return text.rstrip() + " " + tail
    join = rng.choice(_TAIL_JOINS)
    end = text.rstrip()[len(core) :] if rng.random() < 0.5 else ""  # the "?" moves to the end
    return core + join + tail + (")" if join == " (" else "") + end


def frame(text: str, rng: random.Random) -> str:
    """Wrap an ask in an opener or closer that carries no intent ("quick q, ... asap")."""
    roll = rng.random()
    if roll < 0.2:
        text = rng.choice(_FRAME_PREFIXES) + rng.choice((" ", ", ", ": ", "... ", " - ")) + text
    elif roll < 0.45:
        text = text.rstrip(" .")
        text += (" " if text[-1:] in "?!" else rng.choice((" ", ", ", " "))) + rng.choice(
            _FRAME_SUFFIXES
        )
    return text


# ----- production noise --------------------------------------------------------------------

_ABBREVIATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"\byou\b", ("u",)),
    (r"\byour\b", ("ur",)),
    (r"\byou're\b", ("ur", "youre")),
    (r"\bplease\b", ("pls", "plz", "pleaseee")),
    (r"\bright now\b", ("rn",)),
    (r"\bto be honest\b", ("tbh",)),
    (r"\bi don't know\b", ("idk",)),
    (r"\bthanks\b", ("thx", "ty", "thanx")),
    (r"\bbecause\b", ("bc", "cuz", "cause")),
    (r"\bvolume\b", ("vol", "v.", "vol.")),
    (r"\bvolumes\b", ("vols",)),
    (r"\bchapter\b", ("ch.", "ch", "chap")),
    (r"\bwant to\b", ("wanna",)),
    (r"\bgoing to\b", ("gonna",)),
    (r"\bsomething\b", ("smth", "sth", "somethin")),
    (r"\breally\b", ("rly", "realy")),
    (r"\bokay\b", ("ok", "k")),
    (r"\bare\b", ("r",)),
    (r"\bwhat\b", ("wat", "wut", "wht")),
    (r"\bwith\b", ("w/", "wit")),
    (r"\bthough\b", ("tho",)),
    (r"\bpeople\b", ("ppl",)),
    (r"\btomorrow\b", ("tmrw",)),
    (r"\bwhy\b", ("y",)),
    (r"\bdon't\b", ("dont", "dnt")),
    (r"\bi'm\b", ("im", "i am")),
    (r"\bit's\b", ("its",)),
    (r"\bcan't\b", ("cant", "cannot")),
    (r"\bwhere's\b", ("wheres", "where is")),
    (r"\bwhat's\b", ("whats", "wats")),
    (r"\bknow\b", ("kno",)),
    (r"\bseries\b", ("serie",)),
    (r"\brecommend\b", ("reccomend", "recomend")),
    (r"\bdefinitely\b", ("definately",)),
    (r"\bpackage\b", ("pkg", "pakage")),
    (r"\bshipping\b", ("shiping",)),
    (r"\bmanga\b", ("mangas", "manga")),
)  # fmt: skip
_ABBREVIATIONS_RE = [(re.compile(p), alts) for p, alts in _ABBREVIATIONS]
_APOSTROPHE = re.compile(r"(\w)'(\w)")

# QWERTY neighbours, for the typos a thumb makes on a phone keyboard.
_NEIGHBOURS = {
    "q": "wa", "w": "qes", "e": "wrd", "r": "etf", "t": "ryg", "y": "tuh", "u": "yij",
    "i": "uok", "o": "ipl", "p": "ol", "a": "qsz", "s": "adwx", "d": "sfe", "f": "dgr",
    "g": "fht", "h": "gjy", "j": "hku", "k": "jli", "l": "ko", "z": "xa", "x": "zcs",
    "c": "xvd", "v": "cbf", "b": "vng", "n": "bmh", "m": "nj",
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z]{4,}")

_SLANG_PREFIXES = (
    "ngl", "fr", "lowkey", "istg", "tbh", "bruh", "ok so", "um", "pls", "bro", "omg",
    "ugh", "real quick", "so",
)  # fmt: skip
_SLANG_SUFFIXES = (
    "fr", "ngl", "lol", "lmao", "no cap", "pls", "tbh", "rn", "istg", "lowkey", "haha", "asap",
    "bro", "fr fr", "plz",
)  # fmt: skip
_ANGRY_EMOJI = ("😡", "🤬", "😤", "💢", "🙄", "!!!")


def typo(word: str, rng: random.Random) -> str:
    """One keyboard slip: a neighbour key, a dropped, doubled or swapped letter."""
    i = rng.randrange(1, len(word) - 1)  # first letter rarely slips
    kind = rng.randrange(4)
    if kind == 0 and word[i].lower() in _NEIGHBOURS:
        return word[:i] + rng.choice(_NEIGHBOURS[word[i].lower()]) + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]


def _add_typos(text: str, count: int, rng: random.Random) -> str:
    words = list(_WORD.finditer(text))
    if not words:
        return text
    for match in sorted(rng.sample(words, min(count, len(words))), key=lambda m: -m.start()):
        text = text[: match.start()] + typo(match.group(0), rng) + text[match.end() :]
    return text


def roughen(text: str, rng: random.Random, intent: str) -> str:
    """Make a clean message look typed: casing, abbreviations, typos, slang, emoji, punctuation.

    Rates are per message. Escalation is shouted more often and gets angrier emoji; nothing
    else depends on the intent, so noise never gives a label away.
    """
    roll = rng.random()
    shout = 0.10 if intent == "escalation" else 0.012
    if roll < shout:
        text = text.upper()
    elif roll < 0.72:
        text = text.lower()
    elif roll < 0.88:
        text = text[:1].upper() + text[1:]
    if rng.random() < 0.3:
        text = _APOSTROPHE.sub(r"\1\2", text)
    if rng.random() < 0.35:
        for pattern, alts in _ABBREVIATIONS_RE:
            if rng.random() < 0.6:
                text = pattern.sub(lambda _m, a=alts: rng.choice(a), text)
    roll = rng.random()
    if roll < 0.06:
        text = _add_typos(text, 2, rng)
    elif roll < 0.28:
        text = _add_typos(text, 1, rng)
    roll = rng.random()
    if roll < 0.35 and text[-1:] in "?.!" and text.rstrip("?.!"):  # "?" alone stays
        text = text.rstrip("?.!")
    elif roll < 0.45:
        text = text.rstrip() + rng.choice(("?", "??", "???", "!", "!!", "...", " ?", "."))
    roll = rng.random()
    if roll < 0.035:
        text = rng.choice(_SLANG_PREFIXES) + rng.choice((" ", ", ")) + text
    elif roll < 0.07:
        text = text.rstrip() + " " + rng.choice(_SLANG_SUFFIXES)
    if rng.random() < 0.09:
        pool = _ANGRY_EMOJI if intent == "escalation" and rng.random() < 0.6 else lx.EMOJI
        emoji = rng.choice(pool)
        repeat = rng.choice((1, 1, 1, 2, 3)) if not emoji.isascii() else 1  # "T_TT_T" is noise
        text = text.rstrip() + " " + emoji * repeat
    return text.strip() or text


# ----- duplicates --------------------------------------------------------------------------

RESEND_KINDS = ("exact", "case", "punctuation", "case_punctuation")


def resend_variant(text: str, rng: random.Random) -> tuple[str, str]:
    """The text a user re-sends: the same message, or one differing in case or punctuation.

    Returns:
        (text, kind), kind one of :data:`RESEND_KINDS`. Every variant has the same
        :func:`mangaassist.data.normalize.dedup_key` as the original.
    """
    kind = rng.choices(RESEND_KINDS, weights=(0.45, 0.2, 0.25, 0.1))[0]
    if not any(ch.isalnum() for ch in text):  # "?" or "😂": any change is another message
        return text, "exact"
    out = text
    if kind in ("case", "case_punctuation"):
        cased = out.upper() if out == out.lower() else out.lower()
        if cased == out:  # kana/kanji, digits: no case to change
            kind = "punctuation"
        out = cased
    if kind in ("punctuation", "case_punctuation"):
        stripped = out.rstrip("?.! ")
        if stripped != out:
            out = stripped
        else:
            out += rng.choice(("??", "?", "!!", "???", " ?", "..."))
    return out, kind


# ----- the synthetic source ----------------------------------------------------------------

_QUESTION_STARTS = (
    "is", "are", "do", "does", "did", "can", "could", "would", "will", "what", "whats",
    "what's", "when", "where", "which", "who", "how", "should", "has", "have", "any",
)  # fmt: skip

LOW_QUALITY_KINDS = (
    "wrong_label", "truncated", "template_artifact", "duplicated_phrase", "wrong_language",
)  # fmt: skip
_ARTEFACT_WRAPS = (
    "<intent>{label}</intent> {text}",
    "Customer: {text}",
    "User query: {text}",
    "Sure! Here is a customer message: {text}",
    "{text} [END]",
    "{text} <|endoftext|>",
    "{text} {{{{user_input}}}}",
    "[{label}] {text}",
)  # fmt: skip
_PLACEHOLDERS = ("[PRODUCT_NAME]", "<title>", "{{title}}", "[TITLE]", "<PRODUCT>", "$TITLE")


# The small variety an LLM or template tool has: polite variants, a framing sentence.
_CLEAN_REWRITES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"^Can you\b", ("Could you", "Would you", "Can you")),
    (r"^Could you\b", ("Could you please", "Can you", "Could you")),
    (r"\bI would like to\b", ("I want to", "I'd like to", "I would like to")),
    (r"^Please\b", ("Kindly", "Please", "Could you please")),
    (r"^What is\b", ("What's", "What is")),
    (r"^Do you\b", ("Do you", "Does your store")),
    (r"\bmanga\b", ("manga", "manga titles", "manga series")),
)  # fmt: skip
_CLEAN_REWRITES_RE = [(re.compile(p), alts) for p, alts in _CLEAN_REWRITES]
_CLEAN_FRAMES = (
    "I have a question: ", "Quick question: ", "Could you help me? ", "I need some help. ",
    "Question: ", "I was wondering: ", "Can you help with this? ",
)  # fmt: skip


def reword_clean(text: str, rng: random.Random) -> str:
    """Vary a synthetic message a little, keeping it clean and formulaic."""
    for pattern, alts in _CLEAN_REWRITES_RE:
        if rng.random() < 0.5 and pattern.search(text):
            text = pattern.sub(rng.choice(alts), text, count=1)
    if rng.random() < 0.25:
        text = rng.choice(_CLEAN_FRAMES) + text
    return text


def polish(text: str) -> str:
    """Clean a production phrasing the way a paraphrasing tool would: capitalised, punctuated."""
    text = text[:1].upper() + text[1:]
    if text[-1:] not in "?.!":
        first = text.split(" ", 1)[0].lower()
        text += "?" if first in _QUESTION_STARTS else "."
    return text


def corrupt(
    kind: str,
    text: str,
    template: str,
    label: str,
    rng: random.Random,
    filler: Filler,
    foreign: tuple[str, ...],
) -> tuple[str, str]:
    """Break a synthetic message the way a cheap source does.

    Args:
        kind: one of :data:`LOW_QUALITY_KINDS`.
        text: the clean message; template: the phrasing it was filled from.
        label: its true label; foreign: the label's Spanish/French/German phrasings.

    Returns:
        (text, label): only ``wrong_label`` changes the label, to a random other intent.
    """
    from mangaassist.data.schema import INTENTS

    if kind == "wrong_label":
        return text, rng.choice([i for i in INTENTS if i != label])
    if kind == "truncated":
        # Cut inside a word, 40-85% of the way through: the tool hit a length limit.
        cuts = [i for i in range(1, len(text)) if text[i - 1].isalpha() and text[i].isalpha()]
        lo, hi = int(len(text) * 0.4), int(len(text) * 0.85)
        inside = [i for i in cuts if lo <= i <= hi] or cuts or [max(1, len(text) // 2)]
        return text[: rng.choice(inside)], label
    if kind == "template_artifact":
        slots = SLOT.findall(template)
        if slots and rng.random() < 0.5:
            slot = rng.choice(slots)
            if rng.random() < 0.5:
                return filler.fill(template, keep=slot), label  # literal "{title}" left in
            return filler.fill(template.replace("{" + slot + "}", rng.choice(_PLACEHOLDERS))), label
        return rng.choice(_ARTEFACT_WRAPS).format(text=text, label=label), label
    if kind == "duplicated_phrase":
        words = text.split()
        if len(words) < 4 or rng.random() < 0.5:
            return f"{text} {text}", label
        i = rng.randrange(0, len(words) - 2)
        span = words[i : i + rng.randrange(2, 4)]
        return " ".join([*words[: i + len(span)], *span, *words[i + len(span) :]]), label
    if kind == "wrong_language":
        return filler.fill(rng.choice(foreign)), label
    raise ValueError(f"unknown low-quality kind {kind!r}; expected one of {LOW_QUALITY_KINDS}")
