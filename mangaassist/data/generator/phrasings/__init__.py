"""Hand-written phrasing banks, one module per intent, gathered into one :data:`BANKS` map.

Each intent module holds ``PHRASES`` (production-style text, single intent unless marked),
``JAPANESE`` (romaji and kana/kanji, often mixed with English), ``NIHONGO`` (Japanese script
alone, as Japanese customers write it), ``NIHONGO_LONG`` (35-90 words of Japanese with the
ask buried in a story), ``ROMAJI`` (Japanese in Latin letters, Hepburn and lazy spellings),
``CONTRAST`` ("not X, just Y": a negated neighbour's topic word, the cue deciding the label),
``SYNTHETIC`` (the clean, formulaic text of a cheaper source), ``TAILS`` (details tacked onto
an ask) and ``FOREIGN`` (Spanish/French/German, used only for wrong-language synthetic rows).
Slots such as ``{title}`` are filled by :mod:`mangaassist.data.generator.compose`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mangaassist.data.generator.phrasings import (
    checkout_help,
    chitchat,
    escalation,
    faq,
    order_tracking,
    product_discovery,
    product_question,
    promotion,
    recommendation,
    return_request,
)
from mangaassist.data.generator.phrasings.context import (
    BACKSTORY,
    BACKSTORY_JA,
    CLOSERS,
    CLOSERS_JA,
    FRAME_PREFIXES_JA,
    FRAME_SUFFIXES_JA,
    OPENERS,
    OPENERS_JA,
)
from mangaassist.data.schema import INTENTS

# A phrasing that also asks something else ends in "## intent[,intent]".
MARKER = " ## "

# Slots a Japanese-script-only phrasing may hold: their values are Japanese (a title's or
# mangaka's Japanese name, most of the time) or digits and symbols (a count, an order number).
JAPANESE_SLOTS = frozenset({"title_jp", "author_jp", "n", "ch", "days", "age", "pct", "order"})
_SLOT = re.compile(r"\{(\w+)\}")
_LATIN = re.compile("[A-Za-z]")
_KANA_KANJI = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")


def is_japanese_script_only(phrase: str) -> bool:
    """True if ``phrase`` is in Japanese script, with no Latin letter outside Japanese slots.

    Example:
        >>> is_japanese_script_only("{title_jp}の{n}巻ありますか")
        True
        >>> is_japanese_script_only("PayPay使える?"), is_japanese_script_only("{title}の在庫")
        (False, False)
    """
    slots = set(_SLOT.findall(phrase))
    bare = _SLOT.sub("", phrase)
    return slots <= JAPANESE_SLOTS and not _LATIN.search(bare) and bool(_KANA_KANJI.search(bare))


def is_romaji(phrase: str) -> bool:
    """True if ``phrase`` has no kana/kanji (its Japanese, if any, is in Latin letters)."""
    return not _KANA_KANJI.search(phrase)


@dataclass(frozen=True)
class IntentBank:
    """All phrasings of one intent.

    Attributes:
        single: phrasings that ask only this intent.
        built_in_multi: (phrasing, other intents it also asks), used for multi-intent rows.
        japanese: every short Japanese phrasing, romaji and kana/kanji (``JAPANESE``,
            ``NIHONGO`` and ``ROMAJI``): what a user who mixes Japanese into English picks from.
        synthetic: clean, formulaic phrasings of the cheaper source.
        foreign: Spanish/French/German phrasings (wrong-language synthetic rows).
        tails: details tacked onto an ask without changing it ("order #A1234").
        japanese_script: the phrasings of ``japanese`` in Japanese script alone
            (:func:`is_japanese_script_only`), for users who write only Japanese.
        japanese_long: 35-90 words of Japanese script with the ask buried in a story.
        romaji: the phrasings of ``japanese`` in Latin letters only (:func:`is_romaji`).
        contrast: English "not X, just Y" phrasings, the negated topic another intent's.
    """

    single: tuple[str, ...]
    built_in_multi: tuple[tuple[str, tuple[str, ...]], ...]
    japanese: tuple[str, ...]
    synthetic: tuple[str, ...]
    foreign: tuple[str, ...]
    tails: tuple[str, ...]
    japanese_script: tuple[str, ...] = ()
    japanese_long: tuple[str, ...] = ()
    romaji: tuple[str, ...] = ()
    contrast: tuple[str, ...] = ()


def _bank(module: object) -> IntentBank:
    single: list[str] = []
    multi: list[tuple[str, tuple[str, ...]]] = []
    for phrase in module.PHRASES:  # type: ignore[attr-defined]
        if MARKER in phrase:
            text, others = phrase.split(MARKER)
            multi.append((text, tuple(others.split(","))))
        else:
            single.append(phrase)
    # dict.fromkeys: one copy of a line two lists share, first-seen order (deterministic).
    japanese = tuple(dict.fromkeys([*module.JAPANESE, *module.NIHONGO, *module.ROMAJI]))  # type: ignore[attr-defined]
    return IntentBank(
        single=tuple(single),
        built_in_multi=tuple(multi),
        japanese=japanese,
        synthetic=tuple(module.SYNTHETIC),  # type: ignore[attr-defined]
        foreign=tuple(module.FOREIGN),  # type: ignore[attr-defined]
        tails=tuple(module.TAILS),  # type: ignore[attr-defined]
        japanese_script=tuple(p for p in japanese if is_japanese_script_only(p)),
        japanese_long=tuple(module.NIHONGO_LONG),  # type: ignore[attr-defined]
        romaji=tuple(p for p in japanese if is_romaji(p)),
        contrast=tuple(module.CONTRAST),  # type: ignore[attr-defined]
    )


_MODULES = {
    "product_discovery": product_discovery,
    "product_question": product_question,
    "recommendation": recommendation,
    "faq": faq,
    "order_tracking": order_tracking,
    "return_request": return_request,
    "promotion": promotion,
    "checkout_help": checkout_help,
    "escalation": escalation,
    "chitchat": chitchat,
}
assert tuple(_MODULES) == INTENTS, "one phrasing module per intent, in taxonomy order"

BANKS: dict[str, IntentBank] = {intent: _bank(module) for intent, module in _MODULES.items()}
GREETINGS: tuple[str, ...] = tuple(chitchat.GREETINGS)
THANKS: tuple[str, ...] = tuple(chitchat.THANKS)
FAN_TALK: tuple[str, ...] = tuple(chitchat.FAN_TALK)
JAPANESE_GREETINGS: tuple[str, ...] = tuple(chitchat.JAPANESE_GREETINGS)
JAPANESE_THANKS: tuple[str, ...] = tuple(chitchat.JAPANESE_THANKS)
# The ones a user who writes only Japanese script uses ("こんにちは", not "konnichiwa").
JAPANESE_SCRIPT_GREETINGS = tuple(g for g in JAPANESE_GREETINGS if is_japanese_script_only(g))
JAPANESE_SCRIPT_THANKS = tuple(t for t in JAPANESE_THANKS if is_japanese_script_only(t))

__all__ = [
    "BACKSTORY",
    "BACKSTORY_JA",
    "BANKS",
    "CLOSERS",
    "CLOSERS_JA",
    "FAN_TALK",
    "FRAME_PREFIXES_JA",
    "FRAME_SUFFIXES_JA",
    "GREETINGS",
    "JAPANESE_GREETINGS",
    "JAPANESE_SCRIPT_GREETINGS",
    "JAPANESE_SCRIPT_THANKS",
    "JAPANESE_SLOTS",
    "JAPANESE_THANKS",
    "OPENERS",
    "OPENERS_JA",
    "THANKS",
    "IntentBank",
    "is_japanese_script_only",
    "is_romaji",
]
