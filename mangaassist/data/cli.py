"""``mangaassist data generate | audit``: make a corpus, judge a corpus.

Exit status of ``audit``: 0, or 1 when a decision blocks training (``blocking=yes``, see
:mod:`mangaassist.data.audit`) unless ``--no-fail``; 2 for a user error.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _generate(args: argparse.Namespace) -> int:
    from mangaassist.data.generator import write_corpus

    write_corpus(Path(args.out), n=args.n, seed=args.seed, label_noise=args.label_noise)
    return 0


def _audit(args: argparse.Namespace) -> int:
    from mangaassist.data.audit import SUSPECTS_CSV, audit_file

    report = audit_file(Path(args.file), out_dir=Path(args.out), max_length=args.max_length)
    if not report.blocking:
        return 0
    then = "exit 0 (--no-fail)" if args.no_fail else "exit 1; --no-fail to go on anyway"
    print(
        f'[DECISION] blocked=yes by={",".join(report.blocking)} reason="too many wrong labels '
        f'to train on as is: relabel {Path(args.out) / SUSPECTS_CSV} (fill in new_label)" '
        f'then="{then}"',
        flush=True,
    )
    return 0 if args.no_fail else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its subcommands to the top-level parser."""
    data = sub.add_parser("data", help="generate or audit a corpus")
    data_sub = data.add_subparsers(dest="data_command", required=True)

    gen = data_sub.add_parser("generate", help="write the seeded MangaAssist corpus as JSON lines")
    gen.add_argument("--n", type=int, default=55_000, help="examples in all (default 55000)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument(
        "--label-noise", type=float, default=0.03, help="share of production labels flipped"
    )
    gen.add_argument(
        "--out", required=True, help="output folder (corpus.jsonl, injected.json, report)"
    )
    gen.set_defaults(func=_generate)

    aud = data_sub.add_parser(
        "audit",
        help="audit a JSONL/CSV corpus: [DATA_AUDIT] and [DECISION] lines; exit 1 if blocking",
        description="Exit status: 0, or 1 when a [DECISION] says blocking=yes (estimated label "
        "noise above label_noise_max: relabel label_suspects.csv first), unless --no-fail.",
    )
    aud.add_argument("file")
    aud.add_argument(
        "--out", default="audit", help="folder for audit.json and plots (default ./audit)"
    )
    aud.add_argument(
        "--max-length", type=int, default=128, help="token budget for the truncation share"
    )
    aud.add_argument(
        "--no-fail",
        action="store_true",
        help="exit 0 even when a decision says blocking=yes (default: exit 1)",
    )
    aud.set_defaults(func=_audit)
