"""``mangaassist soup OUT RUN RUN [...]``: average fine-tuned runs into one model."""

from __future__ import annotations

import argparse


def _soup(args: argparse.Namespace) -> int:
    from mangaassist.training.soup import SOUP_FILE, soup_runs

    out = soup_runs(args.runs, args.out)
    print(f"[SOUP] path={out} ingredients={len(args.runs)} manifest={out / SOUP_FILE}")
    then = f"mangaassist post-train {out}"
    print(f'[SOUP] note="temperature reset to 1.0; calibrate it and score it: {then}"')
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``soup`` to the top-level parser."""
    sp = sub.add_parser(
        "soup", help="one model: the average of several runs' weights (same data, same encoder)"
    )
    sp.add_argument("out", help="the new run directory (must not exist)")
    sp.add_argument("runs", nargs="+", help="two or more finished run directories")
    sp.set_defaults(func=_soup)
