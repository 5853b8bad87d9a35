"""Training stage: ``train(cfg)``, observability callbacks, the run directory.

Importing the package is cheap (``mangaassist --help`` builds its parser from
``mangaassist.training.cli``): ``train`` imports torch and Lightning when called, and
``load_run`` / ``LoadedRun`` are loaded on first use (PEP 562).
"""

from __future__ import annotations

import importlib

from mangaassist.training.train import train

_LAZY = {"LoadedRun": "run_dir", "load_run": "run_dir"}
__all__ = ["LoadedRun", "load_run", "train"]


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'mangaassist.training' has no attribute '{name}'")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
