"""The monitor modules' docstring examples run as written."""

import doctest
import importlib

import pytest

MODULES = ["settings", "alerts", "drift", "accuracy", "lines", "switches"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(f"mangaassist.monitor.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
