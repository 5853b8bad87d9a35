"""Docstring examples outside evaluation (tests/evaluation has its own) run as written."""

import doctest
import importlib

import pytest

MODULES = [
    "mangaassist.data.schema",
    "mangaassist.data.sources",
    "mangaassist.training.config_schema",
    "mangaassist.training.lines",
    "mangaassist.sweeps.argv",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
