"""The grep-able ``[TAG] key=value`` lines: one unit per figure, and a copy in ``train.log``.

Shares (accuracy, macro F1, rare-class recall) print as percent everywhere, as in the team's
logs; loss, ECE and mean confidences print as they are::

    [VAL] epoch=2 loss=0.3900 acc=91.9 macro_f1=90.8 rare_recall=87.2 ece=0.0430 ...
    [TEST] pass=lightning precision=bf16-mixed loss=0.4100 acc=91.2 macro_f1=90.1 ece=0.0410 ...

``tagged_lines_to_log`` copies every such line printed to stdout (by training, the audit,
evaluation) to the ``logging`` root, whose only handler in a Hydra run is the run folder's
``train.log``: the console shows each line once, the file holds it once.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

PERCENT = ("acc", "macro_f1", "rare_recall")  # fractions printed x100, one decimal
_PLAIN = {"loss": ".4f", "ece": ".4f", "conf_correct": ".3f", "conf_wrong": ".3f"}
HEADLINE = ("loss", "acc", "macro_f1", "rare_recall", "ece", "conf_correct", "conf_wrong")
NO_RARE = "none(no_rare_class)"  # no spaces: lines split on them
_TAG = re.compile(r"^\[[A-Z][A-Z0-9_]*\] ")
LOGGER = "mangaassist.lines"


def percent(value: float | None, digits: int = 1) -> str:
    """A share as the lines print it: percent with ``digits`` decimals, ``na`` when missing.

    Example:
        >>> percent(0.9123), percent(0.9123, 2), percent(None), percent(float("nan"))
        ('91.2', '91.23', 'na', 'na')
    """
    if value is None or math.isnan(value):
        return "na"
    return f"{100 * value:.{digits}f}"


def figure(key: str, value: float | None) -> str:
    """One figure as the logs print it: shares in percent, a missing rare recall named.

    Example:
        >>> figure("acc", 0.0352), figure("ece", 0.043), figure("rare_recall", float("nan"))
        ('3.5', '0.0430', 'none(no_rare_class)')
    """
    if value is None or math.isnan(value):
        return NO_RARE if key == "rare_recall" else "na"
    if key in PERCENT:
        return percent(value)
    return format(value, _PLAIN.get(key, ".4g"))


def figures(values: Mapping[str, float], prefix: str) -> str:
    """``loss=... acc=... macro_f1=...`` from ``{"<prefix>/acc": fraction, ...}`` (fixed order)."""
    return " ".join(
        f"{key}={figure(key, values[f'{prefix}/{key}'])}"
        for key in HEADLINE
        if f"{prefix}/{key}" in values
    )


class _Tee:
    """A stdout stand-in: writes through, and logs each complete ``[TAG] ...`` line."""

    def __init__(self, stream: TextIO, logger: logging.Logger) -> None:
        self._stream, self._logger = stream, logger
        self._pending = ""
        self._busy = False  # a log handler that writes to stdout must not loop back

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        if self._busy:
            return written
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        self._busy = True
        try:
            for line in lines:
                if _TAG.match(line):
                    self._logger.info(line)
        finally:
            self._busy = False
        return written

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> object:  # isatty, fileno, encoding, ...
        return getattr(self._stream, name)


@contextmanager
def tagged_lines_to_log() -> Iterator[None]:
    """While active, ``[TAG] ...`` lines printed to stdout also go to ``logging`` (INFO).

    Under Hydra (``conf/hydra/default.yaml``: root handlers ``[file]``) that is ``train.log``
    (``sweep.log`` for ``sweep.py``); with no handler configured nothing more happens.
    """
    outer = sys.stdout
    sys.stdout = _Tee(outer, logging.getLogger(LOGGER))  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout = outer
