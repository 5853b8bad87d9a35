"""The ``mangaassist`` command: everything that is not ``train.py`` or ``sweep.py``.

Each stage registers its own subcommands; this file only wires them and turns a
:class:`~mangaassist.errors.UserError` into a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mangaassist import __version__
from mangaassist.errors import UserError

# Stage modules that expose ``register(subparsers)``, in the direction of flow.
STAGE_CLIS = (
    "mangaassist.data.cli",
    "mangaassist.training.cli",
    "mangaassist.evaluation.cli",
    "mangaassist.release.cli",
    "mangaassist.comparison.cli",
    "mangaassist.export.cli",
    "mangaassist.serve.cli",
    "mangaassist.monitor.cli",
    "mangaassist.monitor.al_cli",
    "mangaassist.retrain.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser; a stage whose module is missing is left out.

    Stage cli modules import torch, transformers and Lightning only inside their commands, so
    building the parser (``mangaassist --help``) stays well under a second.
    """
    parser = argparse.ArgumentParser(
        prog="mangaassist",
        description="MangaAssist intent framework: data, evaluation, registry and promotion gates "
        "(training is train.py, sweeps sweep.py).",
    )
    parser.add_argument("--version", action="version", version=f"mangaassist {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in STAGE_CLIS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
