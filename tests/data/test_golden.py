"""The hand-written golden set: size, coverage, label rule, tags and README stay consistent.

The golden set is for reporting only (never training or tuning); these checks keep it a
trustworthy yardstick: every intent covered, the multi-intent priority rule applied, and
the tag vocabulary documented in its README with the counts the file really has.

They also keep it independent of the synthetic generator (issue 14): no string the generator
writes text from (phrasing banks, tails, greetings, backstory, lexicon values) may be able to
produce a golden message or a near copy of one. A template *generates* a golden message when,
compiled to a regex with each ``{slot}`` matching that slot's lexicon values and with compose's
rewrites, spellings and openers/closers allowed, it matches the whole message; it is a *near*
copy when, its slots filled with the values the message names, it shares at least
``NEAR_JACCARD`` of its words with it. Both sides are folded alike (``dedup_key``, apostrophes,
compose's abbreviations); texts under ``MIN_WORDS`` words are exempt as generic, and a verbatim
copy of any golden message of ``VERBATIM_MIN_WORDS`` or more words is banned outright. The
failure lists every offending bank file:line, template, golden message and score.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from mangaassist.data.schema import INTENTS, Example, primary_intent, read_examples

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "mangaassist" / "data" / "golden"
GOLDEN = GOLDEN_DIR / "golden.jsonl"
README = GOLDEN_DIR / "README.md"

RARE = ("escalation", "checkout_help")
STYLE_TAGS = ("slang", "typo", "emoji", "short", "long", "romaji", "kana")
# The documented vocabulary; README.md's tag table must list exactly these.
TAGS = frozenset(
    (
        "plain",
        *STYLE_TAGS,
        "multi_intent",
        "rare_intent",
        "boundary",
        "boundary:title_fact_vs_discovery",
        "boundary:like_title",
        "boundary:opinion_recommendation",
        "boundary:author_discovery",
        "boundary:child_suitability",
        "boundary:best_vs_bestseller",
        "boundary:catalog_language",
        "boundary:coupon_promo_vs_checkout",
        "boundary:title_sale",
        "boundary:points",
        "boundary:shipping_threshold",
        "boundary:price_match",
        "boundary:policy_vs_return",
        "boundary:delivery_faq_vs_tracking",
        "boundary:support_hours",
        "boundary:refund_status",
        "boundary:order_went_through",
        "boundary:failed_payment",
        "boundary:partial_delivery",
        "boundary:wrong_damaged_item",
        "boundary:bare_cancel",
        "boundary:annoyance_vs_escalation",
        "boundary:legal_chargeback",
        "boundary:account_takeover",
        "boundary:privacy_leak",
        "boundary:safety",
        "boundary:greeting_with_ask",
        "boundary:fan_talk",
    )
)
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


@pytest.fixture(scope="module")
def golden() -> list[Example]:
    return read_examples(GOLDEN, labels=INTENTS)


def _readme_table(header: str) -> dict[str, int]:
    """Rows ``| `name` | count | ... |`` of the README table headed ``| header |``."""
    rows: dict[str, int] = {}
    in_table = False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"| {header} |"):
            in_table = True
            continue
        if in_table:
            m = re.match(r"\|\s*`([^`]+)`\s*\|\s*(\d+)\s*\|", line)
            if m:
                rows[m.group(1)] = int(m.group(2))
            elif not line.startswith("|"):
                break
    return rows


def test_size_and_per_intent_coverage(golden: list[Example]) -> None:
    assert len(golden) >= 400
    counts = Counter(ex.label for ex in golden)
    for intent in INTENTS:
        need = 60 if intent in RARE else 35
        assert counts[intent] >= need, f"{intent}: {counts[intent]} < {need}"


def test_ids_unique_and_sorted(golden: list[Example]) -> None:
    ids = [ex.id for ex in golden]
    assert all(re.fullmatch(r"g\d{4}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(ex.source == "golden" for ex in golden)


def test_texts_unique_after_normalising(golden: list[Example]) -> None:
    norm = Counter(" ".join(ex.text.lower().split()) for ex in golden)
    dups = [t for t, c in norm.items() if c > 1]
    assert not dups, dups


def test_multi_intent_follows_priority_rule(golden: list[Example]) -> None:
    for ex in golden:
        assert ("multi_intent" in ex.tags) == bool(ex.secondary_intents), ex.id
        if ex.secondary_intents:
            assert set(ex.secondary_intents) <= set(INTENTS), ex.id
            assert ex.label not in ex.secondary_intents, ex.id
            assert ex.label == primary_intent([ex.label, *ex.secondary_intents]), ex.id


def test_tags_in_vocabulary_and_consistent(golden: list[Example]) -> None:
    for ex in golden:
        tags = set(ex.tags)
        assert tags <= TAGS, f"{ex.id}: undocumented tag(s) {sorted(tags - TAGS)}"
        assert ("rare_intent" in tags) == (ex.label in RARE), ex.id
        has_specific = any(t.startswith("boundary:") for t in tags)
        assert ("boundary" in tags) == has_specific, ex.id
        assert ("plain" in tags) == (not tags & set(STYLE_TAGS)), ex.id
        assert ("kana" in tags) == bool(JAPANESE.search(ex.text)), ex.id
        assert ("boundary:greeting_with_ask" in tags) == ("chitchat" in ex.secondary_intents), ex.id


def test_style_coverage(golden: list[Example]) -> None:
    tag_counts = Counter(t for ex in golden for t in ex.tags)
    japanese = sum(1 for ex in golden if {"romaji", "kana"} & set(ex.tags))
    assert japanese >= 40
    assert tag_counts["multi_intent"] >= 60
    assert tag_counts["slang"] >= 60


def test_readme_documents_tags_and_counts(golden: list[Example]) -> None:
    tag_table = _readme_table("tag")
    assert set(tag_table) == TAGS, "README tag table and the test's vocabulary differ"
    tag_counts = Counter(t for ex in golden for t in ex.tags)
    assert tag_table == {t: tag_counts[t] for t in TAGS}
    label_table = _readme_table("label")
    assert label_table == dict(Counter(ex.label for ex in golden))


# ----- independence from the generator ----------------------------------------------------
#
# The generator must not be able to write a golden message or a near copy of one. Every string
# it builds text from (phrasings, tails, greetings, thanks, fan talk, backstory, openers,
# closers, synthetic and foreign lines, lexicon values) is a *template*; for each template and
# golden message the guard decides
#
# (a) ``generates``: the template, compiled to a regex, matches the whole golden message. Each
#     ``{slot}`` matches any value that slot's lexicon (or number pattern) can take, each
#     paraphrase / code-switch / clean rewrite compose can apply matches any of its
#     alternatives, and any run of the openers and closers compose adds around an ask
#     (greetings, thanks, frame and slang words, Japanese particles, the intent tails, emoji)
#     may stand before or after it;
# (b) ``near``: the template, its slots filled with the values the golden message itself names,
#     shares at least NEAR_JACCARD of its words with the golden message (Jaccard of word sets).
#
# Both sides are folded the same way first: ``dedup_key`` (normalise, casefold, punctuation and
# spacing folded), apostrophes dropped (compose writes "whats" for "what's"), and the spellings
# compose itself produces mapped back to one form ("u" -> "you", "vol" -> "volume").
# Japanese script has no spaces: each kana/kanji run counts as its character bigrams.

MIN_WORDS = 5
# Very short texts are exempt on both sides: below five words ("where is my order", "tell me a
# joke", "what are your hours") a bank line and a customer message coincide because the
# phrasing is generic, not because one was copied. The smallest copy this must catch, "is
# kagurabachi peak or mid", has five. Japanese script counts three characters as a word (the
# old guard's 11 characters for 4 words).
MIN_FIXED_WORDS = 2
# A match has to rest on the template's own words, not on its slots alone: "{title} {vol}"
# reproduces any golden message that is only a title and a volume number.
NEAR_JACCARD = 0.8
# At 0.8 a golden message is a near copy of a filled template when one word was added to or
# dropped from a message of 4+ words, or one word was swapped in a message of 9+ words (J =
# n/(n+1) and (n-1)/(n+1)). Lower values start to flag the ordinary stock and price questions
# whose words every customer shares ("{title} {vol} in stock?" vs "is vol 27 of jujutsu kaisen
# in stock" is 0.75); rewriting those would bend the banks away from how people write instead
# of keeping them independent.
VERBATIM_MIN_WORDS = 4  # the old verbatim-copy rule, kept: a 4-word golden copy stays banned

REPO = Path(__file__).resolve().parents[2]
PHRASINGS_DIR = REPO / "mangaassist" / "data" / "generator" / "phrasings"
LEXICON = REPO / "mangaassist" / "data" / "generator" / "lexicon.py"
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]+")
_MARK = re.compile(r"zqz(\d+)zqz|zqr(\d+)zqr")  # slot / rewrite placeholders inside a template


def _canonical_spellings() -> dict[str, str]:
    """Word -> one spelling, for the variants compose writes (its abbreviation table, read
    backwards) and the contractions it strips of their apostrophe."""
    from mangaassist.data.generator import compose
    from mangaassist.data.normalize import dedup_key

    table: dict[str, str] = {}
    for pattern, alternatives in compose._ABBREVIATIONS:
        word = dedup_key(pattern.replace(r"\b", "").replace("'", ""))
        for alternative in alternatives:
            key = dedup_key(alternative.replace("'", ""))
            if " " not in key and key != word:
                table.setdefault(key, word)
    table.update(
        {"whats": "what is", "wheres": "where is", "im": "i am", "ive": "i have",
         "hasnt": "has not", "doesnt": "does not", "isnt": "is not", "wont": "will not",
         "dont": "do not", "pleasee": "please"}
    )  # fmt: skip
    for _ in range(3):  # "dnt" -> "dont" -> "do not": resolve chains to their end
        table = {k: " ".join(table.get(w, w) for w in v.split()) for k, v in table.items()}
    return table


_CANON = _canonical_spellings()


def _fold(text: str) -> str:
    from mangaassist.data.normalize import dedup_key

    key = dedup_key(text.replace("'", "").replace("\u2019", ""))
    return " ".join(_CANON.get(word, word) for word in key.split())


def _filler_re() -> re.Pattern[str]:
    # Slang compose adds or drops at will ("ngl", "no cap", "fr", "lol"): no evidence either way.
    from mangaassist.data.generator import compose

    fillers = {_fold(f) for f in (*compose._SLANG_PREFIXES, *compose._SLANG_SUFFIXES)} - {""}
    alternation = "|".join(re.escape(f) for f in sorted(fillers, key=len, reverse=True))
    return re.compile(rf"(?<!\S)(?:{alternation})(?!\S)")


_FILLERS = _filler_re()


def _words(folded: str) -> set[str]:
    """The word set Jaccard compares: words, kana/kanji runs as character bigrams."""
    out: set[str] = set()
    for word in _FILLERS.sub(" ", folded).split():
        for piece in _CJK.split(word):
            if piece:
                out.add(piece)
        for run in _CJK.findall(word):
            out.update(run[i : i + 2] for i in range(max(1, len(run) - 1)))
    return out


def _size(folded: str) -> float:
    """Length in words; Japanese script counts three characters a word."""
    cjk = sum(len(run) for run in _CJK.findall(folded))
    return len(_CJK.sub(" ", folded).split()) + cjk / 3


def _templates() -> list[tuple[str, str]]:
    """(``file.py:line``, text) for every string the generator writes text from.

    Read from the source, so a finding names the line to edit; the test below checks that
    nothing the generator uses is missed.
    """
    import ast

    from mangaassist.data.generator.phrasings import MARKER

    found: list[tuple[str, str]] = []
    for path in [*sorted(PHRASINGS_DIR.glob("*.py")), LEXICON]:
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.value) for n in tree.body if isinstance(n, ast.Expr)}
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and text and id(node) not in docstrings:
                found.append((f"{path.name}:{node.lineno}", text.split(MARKER)[0]))
    return found


def _slot_values() -> dict[str, tuple[str, ...]]:
    from mangaassist.data.generator import compose
    from mangaassist.data.generator import lexicon as lx

    def titles(rows: object) -> tuple[str, ...]:
        return tuple(v for name, aliases, jp in rows for v in (name, *aliases, jp) if v)  # type: ignore[attr-defined]

    values = {
        "title": titles(lx.TITLES),
        "title_jp": titles(t for t in lx.TITLES if t[2]),
        "author": tuple(v for name, aliases, _ in lx.AUTHORS for v in (name, *aliases)),
        "author_jp": tuple(v for name, _, jp in lx.AUTHORS for v in (name, jp) if v),
        "genre": lx.GENRES, "demo": lx.DEMOGRAPHICS, "format": lx.FORMATS, "merch": lx.MERCH,
        "publisher": lx.PUBLISHERS, "character": lx.CHARACTERS, "carrier": lx.CARRIERS,
        "country": lx.COUNTRIES, "city": lx.CITIES, "payment": lx.PAYMENT_METHODS,
        "price": compose._PRICES, "pct": ("10", "15", "20", "25", "30", "40", "50"),
        "code": lx.COUPON_CODES, "date": compose._DATES, "month": lx.MONTHS,
        "weekday": lx.WEEKDAYS, "relative": lx.RELATIVES, "store": lx.OTHER_STORES,
    }  # fmt: skip
    for slot in ("title", "genre", "demo", "character"):
        values[f"{slot}2"] = values[slot]
    values["title3"] = values["title"]
    return values


_SLOT_VALUES = _slot_values()
# Slots compose fills with generated numbers, as they read once folded ("vol. 3" -> "volume 3").
_SLOT_PATTERNS = {
    "vol": r"(?:(?:volume|book) )?\d{1,2}|(?:v|vol|volume|book)\d{1,2}",
    "n": r"\d{1,2}", "ch": r"\d{1,4}", "age": r"\d{1,2}", "days": r"\d{1,2}",
    "order": r"[a-z]{0,2}\d{4,7}|113 \d{7} \d{7}|ma 2025 \d{6}",
    "tracking": r"1z\d{16}|\d{22}|e[jkmr]\d{9}(?:jp|gb)|jd\d{16}",
}  # fmt: skip
_SLOT_PATTERNS["vol2"] = _SLOT_PATTERNS["vol"]


def _folded_values(values: object) -> tuple[str, ...]:
    out: set[str] = set()
    for value in values:  # type: ignore[attr-defined]
        folded = _fold(value)
        if folded:
            out.add(folded)
            if folded.startswith("the "):
                out.add(folded[4:])  # Filler writes "the The Promised Neverland" as "the ..."
    return tuple(sorted(out, key=len, reverse=True))


def _alternation(values: object) -> str:
    ordered = sorted(set(values), key=len, reverse=True)  # type: ignore[arg-type]
    return "|".join(re.escape(v) for v in ordered if v) or "(?!)"


def _occurs(value: str, folded: str) -> bool:
    """``value`` is in ``folded`` as whole words (anywhere, for Japanese script)."""
    if _CJK.search(value):
        return value in folded
    at = folded.find(value)
    while at >= 0:
        end = at + len(value)
        if (at == 0 or folded[at - 1] == " ") and (end == len(folded) or folded[end] == " "):
            return True
        at = folded.find(value, at + 1)
    return False


class _Template:
    """One template, folded, with its slots and the rewrites compose may apply to it."""

    def __init__(self, where: str, text: str) -> None:
        from mangaassist.data.generator import compose

        self.where, self.text = where, text
        self.slots: list[str] = []

        def mark(match: re.Match[str]) -> str:
            self.slots.append(match.group(1))
            return f" zqz{len(self.slots) - 1}zqz "

        marked = _fold(compose.SLOT.sub(mark, text))
        self.rewrites: list[tuple[str, ...]] = []
        rules = (*compose._REWRITES, *compose._CODE_SWITCH, *compose._CLEAN_REWRITES)
        for pattern, alternatives in rules:
            m = re.search(pattern, marked, flags=re.IGNORECASE)
            if m and not _MARK.search(m.group(0)):
                self.rewrites.append((m.group(0), *(_fold(a) for a in alternatives)))
                marked = f"{marked[: m.start()]} zqr{len(self.rewrites) - 1}zqr {marked[m.end() :]}"
        self.marked = " ".join(marked.split())
        self.literals = [p.strip() for p in _MARK.split(self.marked)[::3] if p and p.strip()]
        fixed = _fold(compose.SLOT.sub(" ", text))
        self.fixed, self.fixed_size = _words(fixed), _size(fixed)

    def regex(self, values: Callable[[str], tuple[str, ...]]) -> str:
        """The template as a regex over folded text; ``values(slot)`` lists a slot's values."""
        out, pos = [], 0
        for m in _MARK.finditer(self.marked):
            out.append(re.escape(self.marked[pos : m.start()]))
            if m.group(1) is not None:
                slot = self.slots[int(m.group(1))]
                body = _SLOT_PATTERNS.get(slot) or _alternation(values(slot))
            else:
                body = _alternation(self.rewrites[int(m.group(2))])
            out.append(rf"\s?(?:{body})\s?")
            pos = m.end()
        out.append(re.escape(self.marked[pos:]))
        return re.sub(r"(?:\\ )+", " ", "".join(out)).strip()


class _Golden:
    """A golden message, folded, with what each slot could be filled with to write it."""

    def __init__(self, ex: Example) -> None:
        self.ex, self.folded = ex, _fold(ex.text)
        self.words, self.size = _words(self.folded), _size(self.folded)
        self._values: dict[str, tuple[str, ...]] = {}

    def values(self, slot: str) -> tuple[str, ...]:
        """The values of ``slot`` that occur in this message (only these can reproduce it)."""
        if slot not in self._values:
            if slot in _SLOT_PATTERNS:
                pattern = rf"(?<!\S)(?:{_SLOT_PATTERNS[slot]})(?!\S)"
                found = tuple(m.group(0) for m in re.finditer(pattern, self.folded))
            else:
                found = tuple(v for v in _folded_values_cached(slot) if _occurs(v, self.folded))
            self._values[slot] = found
        return self._values[slot]


@cache
def _folded_values_cached(slot: str) -> tuple[str, ...]:
    return _folded_values(_SLOT_VALUES[slot])


def _wrappers() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What compose may put before an ask and after it, folded."""
    from mangaassist.data.generator import compose
    from mangaassist.data.generator import corpus as gen
    from mangaassist.data.generator import lexicon as lx
    from mangaassist.data.generator.phrasings import (
        CLOSERS,
        GREETINGS,
        JAPANESE_GREETINGS,
        JAPANESE_THANKS,
        OPENERS,
        THANKS,
    )

    before = (
        *compose._FRAME_PREFIXES, *compose._SLANG_PREFIXES, *compose._JP_PREFIXES,
        *compose._CLEAN_FRAMES, *GREETINGS, *JAPANESE_GREETINGS, *OPENERS,
        *gen._SYNTHETIC_GREETINGS,
    )  # fmt: skip
    after = (
        *compose._FRAME_SUFFIXES, *compose._SLANG_SUFFIXES, *compose._JP_SUFFIXES, *lx.EMOJI,
        *THANKS, *JAPANESE_THANKS, *CLOSERS, *gen._SYNTHETIC_THANKS,
    )  # fmt: skip
    return _folded_values(before), _folded_values(after)


class _Guard:
    """Rules (a) and (b) for one template and one golden message."""

    def __init__(self) -> None:
        from mangaassist.data.generator.phrasings import BANKS

        self.tails = [_Template("tail", t) for bank in BANKS.values() for t in bank.tails]
        self.before, self.after = _wrappers()
        self._wrap: dict[int, str] = {}

    def _wrapped(self, g: _Golden, core: str) -> str:
        """``core`` with any run of what compose adds before and after an ask around it."""
        if id(g) not in self._wrap:
            pre = _alternation(v for v in self.before if _occurs(v, g.folded))
            post = [_alternation(v for v in self.after if _occurs(v, g.folded))]
            post += sorted(
                {
                    t.regex(g.values)
                    for t in self.tails
                    if all(x in g.folded for x in t.literals)
                    and all(s in _SLOT_PATTERNS or g.values(s) for s in t.slots)
                }
            )
            self._wrap[id(g)] = rf"(?:(?:{pre}) )*{{core}}(?: (?:{'|'.join(post)}))*"
        return self._wrap[id(g)].replace("{core}", core)

    def match(self, t: _Template, g: _Golden) -> tuple[str, float] | None:
        """("generates" or "near", Jaccard) when ``t`` can write ``g`` or nearly; else None."""
        if g.size < MIN_WORDS or len(t.fixed & g.words) < MIN_FIXED_WORDS:
            return None
        filled, size, used = set(t.fixed), t.fixed_size, []
        for n, slot in enumerate(t.slots):  # the golden message's own values, all distinct
            options = [v for v in g.values(slot) if v not in used]
            best = max(options, key=lambda v: len(_words(v)), default=None)
            used.append(best)
            filled |= _words(best) if best else {f"<{slot}{n}>"}  # unfillable: one odd word
            size += _size(best) if best else 1
        if size < MIN_WORDS:
            return None
        score = len(filled & g.words) / len(filled | g.words)
        if all(x in g.folded for x in t.literals) and re.fullmatch(
            self._wrapped(g, t.regex(g.values)), g.folded
        ):
            return "generates", score
        return ("near", score) if score >= NEAR_JACCARD else None


def _findings(golden: list[Example]) -> list[str]:
    """Every (template, golden message) pair rule (a) or (b) flags, as report lines."""
    guard = _Guard()
    templates = [_Template(where, text) for where, text in _templates()]
    messages = [_Golden(ex) for ex in golden]
    out = []
    for t in templates:
        if len(t.fixed) < MIN_FIXED_WORDS or (not t.slots and t.fixed_size < MIN_WORDS):
            continue  # can never be flagged (most lexicon values)
        for g in messages:
            found = guard.match(t, g)
            if found:
                out.append(
                    f"{t.where} {found[0]} jaccard={found[1]:.2f} template={t.text!r} "
                    f"golden {g.ex.id}={g.ex.text!r}"
                )
    return out


def _specific(text: str) -> bool:
    """Long enough that two people writing it word for word is unlikely (not "hi", "refund")."""
    from mangaassist.data.normalize import dedup_key

    if _CJK.search(text):
        return len(dedup_key(text)) >= 11  # no spaces to count: characters, punctuation aside
    return len(text.split()) >= VERBATIM_MIN_WORDS


def test_the_guard_sees_every_string_the_generator_writes_from() -> None:
    import random

    from mangaassist.data.generator import compose
    from mangaassist.data.generator.phrasings import (
        BACKSTORY,
        BANKS,
        CLOSERS,
        FAN_TALK,
        GREETINGS,
        JAPANESE_GREETINGS,
        JAPANESE_THANKS,
        OPENERS,
        THANKS,
    )

    seen = {text for _, text in _templates()}
    used = {
        text
        for bank in BANKS.values()
        for text in (
            *bank.single, *(t for t, _ in bank.built_in_multi), *bank.japanese,
            *bank.synthetic, *bank.foreign, *bank.tails,
        )
    } | {*BACKSTORY, *CLOSERS, *FAN_TALK, *GREETINGS, *JAPANESE_GREETINGS, *JAPANESE_THANKS,
         *OPENERS, *THANKS}  # fmt: skip
    assert used <= seen, sorted(used - seen)[:10]
    slots = {s for text in used for s in compose.SLOT.findall(text)}
    fillable = set(compose.Filler(random.Random(0))._fillers)
    assert fillable == set(_SLOT_VALUES) | set(_SLOT_PATTERNS), "slot table out of date"
    assert slots <= fillable


@pytest.mark.parametrize(
    ("template", "message", "expected"),
    [
        # issue 14's two copies: slot templates that regenerate a golden message
        ("is {title} ok for a {age} year old, any gore?",
         "is spy x family ok for a 10 year old? any gore?", "generates"),
        ("is {title} peak or mid", "is kagurabachi peak or mid", "generates"),
        # ... with what compose adds around an ask, and its spellings
        ("is {title} peak or mid", "heyy, is Kagurabachi peak or mid?? lol", "generates"),
        ("do you have {title} {vol}", "hi! do u have jjk vol. 3 pls", "generates"),
        # near copies: a word dropped, added or swapped
        ("is {title} ok for a {age} year old",
         "is spy x family ok for a 10 year old? any gore?", "near"),
        ("ngl the new box set is wrapped so nicely",
         "no cap the new box set is wrapped so nicely", "near"),
        ("could you gift wrap {title} {vol} for me",
         "could you gift wrap uzumaki book 2 for me too", "near"),
        # generic short lines and lexicon-only matches stay allowed
        ("where is my order", "where is my order??", None),
        ("what are your hours", "what are your weekend hours", None),
        ("{title} {vol}", "dead dead demons dededede destruction vol 3", None),
        ("is {title} worth it", "is the frieren anime worth watching before the manga", None),
    ],
)  # fmt: skip
def test_the_guard_rule(template: str, message: str, expected: str | None) -> None:
    found = _Guard().match(_Template("t", template), _Golden(Example(text=message, label="faq")))
    assert (found[0] if found else None) == expected, found


def test_no_golden_message_can_be_generated_or_nearly_copied(golden: list[Example]) -> None:
    # The golden set measures how the model does on messages no generator produced; a bank
    # line that can write one of them (or nearly) turns it into a training example.
    from mangaassist.data.normalize import dedup_key

    keys = {dedup_key(text): where for where, text in _templates()}
    copied = [
        f"{keys[dedup_key(ex.text)]} verbatim golden {ex.id}={ex.text!r}"
        for ex in golden
        if _specific(ex.text) and dedup_key(ex.text) in keys
    ]
    findings = copied + _findings(golden)
    assert not findings, f"{len(findings)} finding(s):\n" + "\n".join(findings)
