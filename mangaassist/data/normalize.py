"""The one text normalisation shared by training and serving, and the duplicate key.

Training, the audit and the serving predictor all call :func:`normalize_text`, so a message
is seen the same way everywhere. :func:`dedup_key` is looser: two messages with the same key
are "normalised duplicates" (they differ only in case, punctuation, spacing or emoji).

Example:
    >>> normalize_text("  where is   my order\u200b!!!!!!  ")
    'where is my order!!!'
    >>> dedup_key("Where is my ORDER?!") == dedup_key("where is my order")
    True
"""

from __future__ import annotations

import re
import unicodedata

# U+200B zero width space, U+200C ZWNJ, U+200D ZWJ, U+2060 word joiner, U+FEFF BOM/ZWNBSP.
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
# Four or more of the same character; the callback keeps only punctuation runs short.
_RUN = re.compile(r"(.)\1{3,}", re.DOTALL)
MAX_PUNCT_RUN = 3  # "???" still signals emphasis; "??????" adds nothing a model needs


def _is_punct(char: str) -> bool:
    # P* = punctuation; Sm/Sk = math and modifier symbols such as "~", "+", "^".
    # Emoji (So) are left alone: a row of them is part of the message's tone.
    category = unicodedata.category(char)
    return category.startswith("P") or category in ("Sm", "Sk")


def _shorten_run(match: re.Match[str]) -> str:
    run = match.group(0)
    return run[:MAX_PUNCT_RUN] if _is_punct(match.group(1)) else run


def _normalize_once(text: str) -> str:
    text = _ZERO_WIDTH.sub("", text)  # before NFKC, so the characters they split can compose
    text = unicodedata.normalize("NFKC", text)
    text = " ".join(text.split())  # any unicode whitespace run, newlines and tabs included
    return _RUN.sub(_shorten_run, text)


def normalize_text(text: str) -> str:
    """Normalise a message the way training and serving both see it.

    Steps: drop zero-width characters, unicode NFKC (full-width to ASCII, "…" to "..."),
    collapse whitespace to single spaces and strip, shorten runs of one punctuation
    character to three. Case is kept. The result is a fixed point:
    ``normalize_text(normalize_text(x)) == normalize_text(x)``.

    Example:
        >>> normalize_text("ＯＮＥ　ＰＩＥＣＥ vol 12??????\\n\\tin stock")
        'ONE PIECE vol 12??? in stock'
    """
    # Each step can expose work for another (NFKC makes "……" into "......", removing a
    # character can let NFKC compose its neighbours); iterate to a fixed point so the
    # function is idempotent by construction. One or two passes in practice.
    for _ in range(8):
        out = _normalize_once(text)
        if out == text:
            return out
        text = out
    return text


def dedup_key(text: str) -> str:
    """Key shared by texts that are duplicates after normalisation.

    Normalises, casefolds, replaces every character that is not a letter or digit (any
    script, so kana and kanji stay) by a space and collapses spaces. A text with no letter
    or digit at all (only emoji or punctuation) keys on its casefolded normalised form, so
    "😂" and "👍" are not duplicates of each other.

    Example:
        >>> dedup_key("Is vol. 12 in stock?!  😊")
        'is vol 12 in stock'
        >>> dedup_key("この漫画の在庫ありますか？")
        'この漫画の在庫ありますか'
    """
    folded = normalize_text(text).casefold()
    key = " ".join("".join(c if c.isalnum() else " " for c in folded).split())
    return key or folded
