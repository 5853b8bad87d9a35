"""Which tokens of a message longer than ``max_length`` reach the model: the option, in one place.

``first`` (the default, as before the option) keeps [CLS], the first ``max_length - 2`` word
pieces and [SEP]. A long MangaAssist message (35-90 words, the ask buried at the end of a
story) loses its end, where the ask often is. ``head_tail`` keeps [CLS], the first
``head_tokens`` word pieces, the last ``max_length - 2 - head_tokens`` and [SEP], so both the
opening and the closing ask reach the model (Sun et al. 2019, "How to Fine-Tune BERT for Text
Classification?", found head + tail best of the cuts they tried on long reviews). A message
that fits, ``len(ids) <= max_length`` with [CLS] and [SEP] counted, is unchanged either way.
Which one helps here is for the validation comparison to say (``data.module.truncation``).

:meth:`Truncation.keep` is the one place the selection happens, on the ids a tokenizer gives
with its special tokens: the DataModule (training), :class:`~mangaassist.training.run_dir.
LoadedRun` (scoring a run, the teacher pass), the export's tokenizer check and
:class:`~mangaassist.inference.tokenize.BatchTokenizer` (serving, built from the bundle's
manifest) all call it, so a model is served exactly the ids it was trained on. It is plain
Python on lists of ints: serving imports no torch. For ``first`` the tokenizer's own right
truncation gives the same ids and is kept (:attr:`Truncation.by_tokenizer`), so the default
path is what it was; ``head_tail`` encodes the whole message, then keeps its ends.

Example:
    >>> ids = [101, 1, 2, 3, 4, 5, 6, 7, 102]  # [CLS], 7 word pieces, [SEP]: 9 tokens
    >>> Truncation("head_tail", head_tokens=2).keep(ids, max_length=6)
    [101, 1, 2, 6, 7, 102]
    >>> Truncation("first").keep(ids, max_length=6)
    [101, 1, 2, 3, 4, 102]
    >>> Truncation("head_tail", head_tokens=2).keep([101, 1, 2, 102], max_length=6)  # fits
    [101, 1, 2, 102]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mangaassist.errors import UserError

TRUNCATIONS = ("first", "head_tail")
DEFAULT_TRUNCATION = "first"
DEFAULT_HEAD_TOKENS = 64  # of 126 word pieces at max_length 128; to be chosen on validation
CONFIG_KEY = "data.module.truncation"  # where a run's choice lives in its config.yaml
HEAD_KEY = "data.module.truncation_head_tokens"
SPECIAL_TOKENS = 2  # [CLS] first and [SEP] last, always kept


@dataclass(frozen=True)
class Truncation:
    """A checked truncation strategy (build it with :func:`check_truncation`).

    Args:
        strategy: ``first`` or ``head_tail``.
        head_tokens: ``head_tail``: word pieces kept from the start, the rest of the budget
            from the end; None for ``first``.
    """

    strategy: str = DEFAULT_TRUNCATION
    head_tokens: int | None = None

    @property
    def by_tokenizer(self) -> bool:
        """True for ``first``: the tokenizer's own right truncation gives the same ids."""
        return self.strategy == "first"

    def keep(self, ids: Sequence[int], max_length: int) -> list[int]:
        """The ids the model sees: ``ids`` itself when it fits, else [CLS] + kept + [SEP].

        Args:
            ids: one message's token ids, [CLS] first and [SEP] last, untruncated (or, for
                ``first``, already truncated by the tokenizer: then it fits).
            max_length: the token budget, special tokens included (the run's max_length).
        """
        if len(ids) <= max_length:
            return list(ids)
        body = max_length - SPECIAL_TOKENS  # word pieces kept between [CLS] and [SEP]
        head = body if self.head_tokens is None else min(self.head_tokens, body)
        tail = body - head  # 0 for first: ids[-1:-1] is empty
        return [ids[0], *ids[1 : 1 + head], *ids[len(ids) - 1 - tail : -1], ids[-1]]

    def encode(self, tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
        """Token ids of ``texts`` (already preprocessed) through a Hugging Face tokenizer, cut.

        ``first`` lets the tokenizer truncate, as before the option; ``head_tail`` encodes whole
        messages (``verbose=False``: some exceed the model's limit on purpose), then :meth:`keep`.
        Training (the DataModule) and scoring a run both encode this way.
        """
        enc = tokenizer(
            list(texts), truncation=self.by_tokenizer, max_length=max_length, verbose=False
        )
        return [self.keep(ids, max_length) for ids in enc["input_ids"]]

    def describe(self, max_length: int) -> str:
        """What is applied, in words (the bundle manifest's ``truncation``)."""
        if self.strategy == "first":  # the manifest's text from before the option
            return f"first {max_length} tokens, [CLS] and [SEP] included"
        head = min(int(self.head_tokens or 0), max_length - SPECIAL_TOKENS)
        tail = max_length - SPECIAL_TOKENS - head
        return (
            f"head_tail: a message over {max_length} tokens keeps [CLS], its first {head} and "
            f"last {tail} word pieces, and [SEP]; a shorter one is kept whole"
        )


def check_truncation(
    strategy: object,
    head_tokens: object,
    max_length: int,
    where: str = CONFIG_KEY,
    head_where: str = HEAD_KEY,
) -> Truncation:
    """The strategy and head size, checked: None is ``first`` (runs and bundles before it).

    Args:
        strategy: the configured strategy name.
        head_tokens: the configured head size (read only for ``head_tail``; None: 64).
        max_length: the run's token budget, [CLS] and [SEP] included.
        where: what to call the strategy in an error (a config key, a manifest and key).
        head_where: likewise for the head size.

    Raises:
        UserError: an unknown strategy, or a head size that is not a whole number from 0 to
            ``max_length - 2``; the message names the key and what is allowed.

    Example:
        >>> check_truncation(None, None, 128)
        Truncation(strategy='first', head_tokens=None)
        >>> check_truncation("head_tail", None, 128)
        Truncation(strategy='head_tail', head_tokens=64)
    """
    if strategy is None:
        return Truncation()
    if not isinstance(strategy, str) or strategy not in TRUNCATIONS:
        raise UserError(
            f"{where}={strategy!r} is not allowed: use one of {', '.join(TRUNCATIONS)} (first: "
            "the first max_length tokens; head_tail: the first and last tokens of a long message)"
        )
    if strategy == "first":
        return Truncation()
    head = DEFAULT_HEAD_TOKENS if head_tokens is None else head_tokens
    body = int(max_length) - SPECIAL_TOKENS
    if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head <= body:
        raise UserError(
            f"{head_where}={head!r} is not allowed with max_length={max_length}: use a whole "
            f"number from 0 to {body} (word pieces kept from the start; the rest of the {body} "
            "from the end)"
        )
    return Truncation("head_tail", head)
