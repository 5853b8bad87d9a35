"""The serve and inference modules' docstring examples run (they are the short API guide)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "mangaassist.inference.policy",
    "mangaassist.inference.tokenize",
    "mangaassist.serve.batcher",
    "mangaassist.serve.settings",
    "mangaassist.serve.switch",
    "mangaassist.evaluation.fallback",
    "mangaassist.evaluation.calibration",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
