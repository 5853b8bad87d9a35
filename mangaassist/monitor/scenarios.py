"""Simulated MangaAssist traffic: typed scenarios, their drift schedule, and message text.

A scenario (``conf/monitor/scenarios.yaml``) says how traffic departs from the taxonomy's
intent mix and daily rhythm from ``start_day`` on: per-intent rate multipliers (a sale), a
weekly creep (slow label shift), a Japanese-English surge, a new hit title with new slang, or
broken upstream preprocessing. :class:`MessageMaker` words one message of a given intent with
the corpus generator's own phrasings, slot fillers and noise, so simulated traffic reads like
the training data until a scenario says otherwise.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

import mangaassist
from mangaassist.data.generator import compose
from mangaassist.data.generator import lexicon as lx
from mangaassist.data.generator.corpus import HOUR_WEIGHTS, LABEL_MIX
from mangaassist.data.generator.phrasings import BANKS, GREETINGS, THANKS
from mangaassist.data.schema import INTENTS
from mangaassist.errors import UserError

SCENARIOS_FILE = Path(mangaassist.__file__).resolve().parents[1] / "conf/monitor/scenarios.yaml"
CORRUPTIONS = ("html_entities", "all_caps")
# Volume of each UTC hour relative to the daily mean (mean 1.0): the corpus's evening peak.
HOUR_FACTORS = tuple(24 * w / sum(HOUR_WEIGHTS) for w in HOUR_WEIGHTS)


@dataclass
class NewTitle:
    """A title (and slang) the model never saw; checked against the generator's lexicons."""

    title: str = "Quillborne Requiem"
    aliases: list[str] = field(default_factory=list)
    slang: list[str] = field(default_factory=list)
    share: float = 0.5  # of messages whose intent has a {title} phrasing
    slang_share: float = 0.5  # of those, the share that also carries a new slang word


@dataclass
class Corruption:
    """Upstream breakage: each drifted message is corrupted with probability ``share``."""

    kinds: list[str] = field(default_factory=lambda: list(CORRUPTIONS))
    share: float = 0.5


@dataclass
class Scenario:
    """One scenario; every drift field is neutral by default (``stationary`` sets none)."""

    name: str = ""
    description: str = ""
    start_day: float | None = None  # None: no drift
    duration_days: float | None = None  # None: to the end of the run
    intent_multipliers: dict[str, float] = field(default_factory=dict)
    weekly_creep: dict[str, float] = field(default_factory=dict)
    jp_multiplier: float = 1.0
    new_title: NewTitle | None = None
    corruption: Corruption | None = None
    expected_signals: list[str] = field(default_factory=list)

    def active(self, day: float) -> bool:
        """Whether the drift is on at ``day`` (days since the simulated start)."""
        if self.start_day is None or day < self.start_day:
            return False
        return self.duration_days is None or day < self.start_day + self.duration_days


@dataclass
class Traffic:
    """What all scenarios share: the calendar start, language mix and drawn latency."""

    start: str = "2026-03-02T00:00:00Z"
    jp_share: float = 0.117
    multi_intent: float = 0.179
    latency_p50_ms: float = 8.0
    latency_sigma: float = 0.27
    queue_p50_ms: float = 0.4


@dataclass
class ScenarioFile:
    traffic: Traffic = field(default_factory=Traffic)
    scenarios: dict[str, Scenario] = field(default_factory=dict)


def load_scenarios(path: str | Path | None = None) -> ScenarioFile:
    """Read and check the scenario file (default ``conf/monitor/scenarios.yaml``).

    Raises:
        UserError: a missing file, an unknown key, a wrong type, an unknown intent or
            corruption, a share out of [0, 1], or a "new" title/slang the lexicons contain.
    """
    file = Path(path) if path else SCENARIOS_FILE
    if not file.is_file():
        raise UserError(f"{file}: no scenario file; pass --scenarios PATH")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ScenarioFile), OmegaConf.load(file))
        cfg: ScenarioFile = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        keys = ", ".join(f.name for f in fields(Scenario))
        msg = str(err).splitlines()[0]
        raise UserError(f"{file}: bad scenario config ({msg}); scenario keys are: {keys}") from err
    for name, sc in cfg.scenarios.items():
        sc.name = name
        _check(file, sc)
    return cfg


def get_scenario(name: str, path: str | Path | None = None) -> tuple[Traffic, Scenario]:
    """The shared traffic settings and the scenario called ``name``."""
    cfg = load_scenarios(path)
    if name not in cfg.scenarios:
        known = ", ".join(cfg.scenarios)
        raise UserError(
            f"scenario {name!r} is not in {path or SCENARIOS_FILE}; use one of: {known}"
        )
    return cfg.traffic, cfg.scenarios[name]


def _check(file: Path, sc: Scenario) -> None:
    where = f"{file}: scenarios.{sc.name}"
    for key in ("intent_multipliers", "weekly_creep"):
        for intent, x in getattr(sc, key).items():
            if intent not in INTENTS:
                raise UserError(f"{where}.{key}: unknown intent {intent!r}; use one of {INTENTS}")
            if x < 0:
                raise UserError(f"{where}.{key}.{intent}={x}: must be >= 0")
    if sc.corruption is not None:
        bad = [k for k in sc.corruption.kinds if k not in CORRUPTIONS]
        if bad or not sc.corruption.kinds:
            raise UserError(f"{where}.corruption.kinds={bad or '[]'}: use some of {CORRUPTIONS}")
        _share(f"{where}.corruption.share", sc.corruption.share)
    if sc.new_title is not None:
        _share(f"{where}.new_title.share", sc.new_title.share)
        _share(f"{where}.new_title.slang_share", sc.new_title.slang_share)
        known = lexicon_words()
        for phrase in [sc.new_title.title, *sc.new_title.aliases, *sc.new_title.slang]:
            seen = [w for w in _words(phrase) if w in known]
            if seen:  # a word the generator already uses would not be "never seen"
                raise UserError(
                    f"{where}.new_title: {phrase!r} uses {seen}, which the generator's lexicons "
                    "or phrasings contain; invent words the model cannot have seen"
                )
    if sc.jp_multiplier < 0:
        raise UserError(f"{where}.jp_multiplier={sc.jp_multiplier}: must be >= 0")


def _share(key: str, x: float) -> None:
    if not 0.0 <= x <= 1.0:
        raise UserError(f"{key}={x}: a share between 0 and 1")


def _words(text: str) -> list[str]:
    return [w.casefold() for w in re.findall(r"\w+", text)]


@cache
def lexicon_words() -> frozenset[str]:
    """Every word of the generator's lexicons and phrasing banks, casefolded."""
    strings: list[str] = []

    def walk(x: object) -> None:
        if isinstance(x, str):
            strings.append(x)
        elif isinstance(x, tuple | list):
            for y in x:
                walk(y)

    for value in vars(lx).values():
        if isinstance(value, tuple):
            walk(value)
    for bank in BANKS.values():
        walk([bank.single, bank.japanese, bank.synthetic, bank.tails, bank.built_in_multi])
    walk([GREETINGS, THANKS])
    return frozenset(w for s in strings for w in _words(s))


def intent_rates(sc: Scenario, day: float) -> dict[str, float]:
    """Each intent's expected share of a stationary hour at ``day``, drift applied.

    Multipliers scale an intent's volume (a sale brings extra shoppers), so they sum to more
    than 1 while they last; the weekly creep steps up once per week after the start.
    """
    rates = {i: LABEL_MIX[i] / 100 for i in INTENTS}
    if not sc.active(day):
        return rates
    weeks = 1 + math.floor((day - sc.start_day) / 7)  # type: ignore[operator]
    for intent, x in sc.intent_multipliers.items():
        rates[intent] *= x
    for intent, x in sc.weekly_creep.items():
        rates[intent] *= 1 + x * weeks
    return rates


class _HitFiller(compose.Filler):
    """A Filler whose ``{title}`` is the new hit (or one of its aliases)."""

    def __init__(self, rng: random.Random, hit: NewTitle) -> None:
        super().__init__(rng)
        self._names = [hit.title, *hit.aliases]

    def value(self, slot: str) -> str:
        if slot in ("title", "title_jp"):
            name = self._names[0] if self.rng.random() < 0.65 else self.rng.choice(self._names)
            return name.lower() if self.rng.random() < 0.5 else name
        return super().value(slot)


class MessageMaker:
    """Words one message of an intent, the generator's way (phrasing, slots, noise).

    Args:
        rng: the only randomness; the same seed gives the same messages.
        multi_intent: share that get a greeting or thanks beside the ask (label unchanged:
            chitchat ranks last in the taxonomy's priority).
    """

    def __init__(self, rng: random.Random, multi_intent: float = 0.179) -> None:
        self.rng, self.multi_intent = rng, multi_intent
        self.title_phrases = {
            i: [p for p in BANKS[i].single if "{title}" in p] for i in INTENTS
        }  # faq has none: a hit title does not change policy questions

    def can_mention_title(self, intent: str) -> bool:
        """Whether some phrasing of ``intent`` names a title."""
        return bool(self.title_phrases[intent])

    def render(
        self,
        intent: str,
        *,
        japanese: bool = False,
        hit: NewTitle | None = None,
        slang: bool = False,
    ) -> str:
        """One message whose true label is ``intent``.

        Args:
            japanese: mix Japanese in (a Japanese phrasing, or code-switched English).
            hit: name this title (needs :meth:`can_mention_title`).
            slang: add one of ``hit.slang``.
        """
        rng, bank = self.rng, BANKS[intent]
        filler: compose.Filler = _HitFiller(rng, hit) if hit else compose.Filler(rng)
        has_jp = False
        if hit is not None:
            phrase = rng.choice(self.title_phrases[intent])
        elif japanese and bank.japanese and rng.random() < 0.55:
            phrase, has_jp = rng.choice(bank.japanese), True
        elif intent == "chitchat" and rng.random() < 0.5:
            phrase = rng.choice(GREETINGS if rng.random() < 0.6 else THANKS)
        else:
            phrase = rng.choice(bank.single)
        text = filler.fill(phrase)
        if intent != "chitchat":
            text = compose.paraphrase(text, rng)
            if bank.tails and not compose.SLOT.search(phrase) and rng.random() < 0.3:
                text = compose.add_tail(text, filler.fill(rng.choice(bank.tails)), rng)
            if rng.random() < self.multi_intent:
                if rng.random() < 0.6:
                    text = compose.add_greeting(text, rng.choice(GREETINGS), rng)
                else:
                    text = compose.add_thanks(text, rng.choice(THANKS), rng)
        if japanese and not has_jp:
            text = compose.code_switch(text, rng)
        if slang and hit is not None and hit.slang:
            word = rng.choice(hit.slang)
            text = f"{word} {text}" if rng.random() < 0.4 else f"{text} {word}"
        if intent != "chitchat":
            text = compose.frame(text, rng)
        return compose.roughen(text, rng, intent)


_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#39;"))


def corrupt(text: str, kind: str, rng: random.Random) -> str:
    """Break a message the way a bad upstream change does.

    ``html_entities``: HTML-escaped (sometimes wrapped in ``<p>`` first, sometimes escaped
    twice, so ``'`` arrives as ``&amp;#39;``); every result holds at least one entity.
    ``all_caps``: upper-cased.
    """
    if kind == "all_caps":
        return text.upper()
    if kind != "html_entities":
        raise ValueError(f"unknown corruption {kind!r}; expected one of {CORRUPTIONS}")
    if rng.random() < 0.5 or not any(ch in text for ch, _ in _ENTITIES):
        text = f"<p>{text}</p>"
    for ch, entity in _ENTITIES:  # "&" first, so the entities made here are not re-escaped
        text = text.replace(ch, entity)
    if rng.random() < 0.5:
        text = text.replace("&", "&amp;")
    return text
