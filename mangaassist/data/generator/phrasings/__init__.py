"""Hand-written phrasing banks, one module per intent, gathered into one :data:`BANKS` map.

Each intent module holds ``PHRASES`` (production-style text, single intent unless marked),
``JAPANESE`` (romaji and kana/kanji), ``SYNTHETIC`` (the clean, formulaic text of a cheaper
source), ``TAILS`` (details tacked onto an ask) and ``FOREIGN`` (Spanish/French/German, used
only for wrong-language synthetic rows). Slots such as ``{title}`` are filled by
:mod:`mangaassist.data.generator.compose`.
"""

from __future__ import annotations

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
from mangaassist.data.generator.phrasings.context import BACKSTORY, CLOSERS, OPENERS
from mangaassist.data.schema import INTENTS

# A phrasing that also asks something else ends in "## intent[,intent]".
MARKER = " ## "


@dataclass(frozen=True)
class IntentBank:
    """All phrasings of one intent.

    Attributes:
        single: phrasings that ask only this intent.
        built_in_multi: (phrasing, other intents it also asks), used for multi-intent rows.
        japanese: romaji and kana/kanji phrasings.
        synthetic: clean, formulaic phrasings of the cheaper source.
        foreign: Spanish/French/German phrasings (wrong-language synthetic rows).
        tails: details tacked onto an ask without changing it ("order #A1234").
    """

    single: tuple[str, ...]
    built_in_multi: tuple[tuple[str, tuple[str, ...]], ...]
    japanese: tuple[str, ...]
    synthetic: tuple[str, ...]
    foreign: tuple[str, ...]
    tails: tuple[str, ...]


def _bank(module: object) -> IntentBank:
    single: list[str] = []
    multi: list[tuple[str, tuple[str, ...]]] = []
    for phrase in module.PHRASES:  # type: ignore[attr-defined]
        if MARKER in phrase:
            text, others = phrase.split(MARKER)
            multi.append((text, tuple(others.split(","))))
        else:
            single.append(phrase)
    return IntentBank(
        single=tuple(single),
        built_in_multi=tuple(multi),
        japanese=tuple(module.JAPANESE),  # type: ignore[attr-defined]
        synthetic=tuple(module.SYNTHETIC),  # type: ignore[attr-defined]
        foreign=tuple(module.FOREIGN),  # type: ignore[attr-defined]
        tails=tuple(module.TAILS),  # type: ignore[attr-defined]
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

__all__ = [
    "BACKSTORY",
    "BANKS",
    "CLOSERS",
    "FAN_TALK",
    "GREETINGS",
    "JAPANESE_GREETINGS",
    "JAPANESE_THANKS",
    "OPENERS",
    "THANKS",
    "IntentBank",
]
