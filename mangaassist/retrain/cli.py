"""``mangaassist retrain --labels LABELLED.jsonl``: argparse wiring only.

torch, Lightning and transformers load inside the command, so ``mangaassist --help`` stays fast.
"""

from __future__ import annotations

import argparse


def _retrain(args: argparse.Namespace) -> int:
    from mangaassist.retrain.loop import retrain

    report = retrain(
        args.labels,
        registry=args.registry,
        champion=args.champion,
        out=args.out,
        overrides=args.overrides,
        config=args.config,
        gates=args.gates,
        register=args.register,
        monitor=args.monitor,
    )
    return 0 if report["registered"] else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``retrain`` to the top-level parser."""
    p = sub.add_parser(
        "retrain",
        help="merge labelled messages into the champion's data, retrain, gate, register for shadow",
        description="Merge a labelled file (active-learn's, label column filled) into the "
        "champion's training data (deduplicated; never into its test split, the golden set or "
        "the registry's gate set; a data version recorded), train with the champion's config on "
        "its own validation and test splits, run the gates against the champion, print the points "
        "recovered on the gate set and the realised cost, and register the candidate (not "
        "promoted) for shadow. Exit 0 registered, 1 rejected by the gates, 2 a user error.",
    )
    p.add_argument("--labels", required=True, metavar="LABELLED.jsonl", help="JSONL or CSV")
    p.add_argument(
        "--registry",
        metavar="DIR",
        help="registry folder (default $MANGAASSIST_REGISTRY, else ./registry)",
    )
    p.add_argument(
        "--champion",
        metavar="RUN",
        help="run directory or version to start from (default: the registry's champion)",
    )
    p.add_argument("--out", metavar="DIR", help="the candidate's run dir (outputs/retrain/<time>)")
    p.add_argument("--config", help="retrain settings YAML (default conf/retrain/default.yaml)")
    p.add_argument("--gates", help="gate settings YAML (default conf/gates/default.yaml)")
    p.add_argument(
        "--register",
        choices=("pass", "always"),
        help="register when the gates pass (default), or always",
    )
    p.add_argument(
        "--monitor",
        metavar="MONITOR_JSON",
        help="monitor.json (or its folder) whose alert asked for this: estimate beside outcome",
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="over the champion's config")
    p.set_defaults(func=_retrain)
