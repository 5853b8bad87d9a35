"""Which Japanese words and characters to add to the tokenizer: ``vocab_extension`` (issue 13).

all-MiniLM-L6-v2's uncased WordPiece has no entry for many kanji the intents hinge on (注 of
注文 "order", 届 "arrive", 返 "return": a fifth of the tokens of a Japanese-only message are
``[UNK]``), and its normaliser strips voicing marks (で -> て). The other lever,
``text_preprocess: romaji``, writes Japanese in Latin letters instead; this one keeps the
script and teaches the tokenizer its most frequent pieces:

1. every run of kana/kanji in the training split's messages (normalised, as the DataModule
   feeds them) is cut into words by pykakasi's dictionary (the transliteration's segmenter),
   and every word and every single character of it is counted;
2. the ``size`` most frequent with at least ``min_count`` occurrences (ties by first
   appearance order, so a corpus gives one list) that the tokenizer does not already hold
   become added tokens. They are matched on the text before the tokenizer's normaliser
   (``normalized=False``, longest match first), so 注文 is one token and で keeps its mark;
3. the encoder's embedding matrix grows by one row per token, initialised to the mean of the
   embeddings of the word pieces of its romaji (注文 -> "chuumon" -> chu ##um ##on): a start
   near what the encoder already knows, then trained (``mangaassist.model.backbone``).

Only the training split is read, so validation and test messages pick nothing. The tokens
live in the run's ``tokenizer/`` and go into the bundle's ``tokenizer.json`` with it, so
training, evaluation, export and serving tokenise alike.

Example:
    >>> japanese_tokens(["注文まだ", "注文できない", "hello"], vocab=set(), size=3, min_count=2)
    ['注文', '注', '文']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable

from mangaassist.data.transliterate import JAPANESE_RUN, segments, to_romaji
from mangaassist.errors import UserError

CONFIG_KEY = "vocab_extension"


def japanese_tokens(
    texts: Iterable[str], vocab: Collection[str], size: int, min_count: int = 5
) -> list[str]:
    """The ``size`` most frequent Japanese words and characters of ``texts`` not in ``vocab``.

    Args:
        texts: normalised training messages.
        vocab: the tokenizer's vocabulary (entries already there are not added again).
        size: how many tokens at most.
        min_count: fewer occurrences than this and a word or character is left out.

    Returns:
        Tokens, most frequent first; equal counts in the order they first appeared.
    """
    counts: Counter[str] = Counter()
    for text in texts:
        for match in JAPANESE_RUN.finditer(text):
            for word, _reading in segments(match.group(0)):
                counts[word] += 1
                if len(word) > 1:
                    counts.update(word)
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])  # stable: first seen first on ties
    return [t for t, n in ranked if n >= min_count and t not in vocab][:size]


def romaji_pieces_text(token: str) -> str:
    """What a new token's embedding is initialised from: its romaji (the token if none)."""
    return to_romaji(token) or token


def check_vocab_extension(size: int, text_preprocess: str) -> None:
    """Refuse tokens to add beside ``text_preprocess=romaji``, which leaves no Japanese script.

    The types and ranges of ``vocab_extension`` are checked with the rest of the config
    (``mangaassist.training.config_schema``).

    Raises:
        UserError: naming both keys and the fix.
    """
    if size and text_preprocess != "none":
        raise UserError(
            f"{CONFIG_KEY}.size={size} with data.module.text_preprocess={text_preprocess}: the "
            "transliteration leaves no Japanese script to add tokens for. Use one lever: "
            f"{CONFIG_KEY}.size=0, or data.module.text_preprocess=none"
        )
