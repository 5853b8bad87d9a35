"""The docstring examples of the evaluation modules run, so they cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "settings",
    "metrics",
    "fallback",
    "calibration",
    "latency",
    "significance",
    "confusion",
    "evaluate",
    "selection",
    "secondary",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(f"mangaassist.evaluation.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
