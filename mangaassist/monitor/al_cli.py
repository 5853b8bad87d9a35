"""``mangaassist simulate`` and ``mangaassist active-learn``: argparse wiring only.

The heavy imports (onnxruntime, scikit-learn, tqdm) happen inside the commands, so building
the parser (``mangaassist --help``) stays fast.
"""

from __future__ import annotations

import argparse


def _simulate(args: argparse.Namespace) -> int:
    from mangaassist.monitor.simulate import simulate

    info = simulate(
        args.out,
        args.scenario,
        bundle=args.bundle,
        url=args.url,
        days=args.days,
        rate_per_hour=args.rate_per_hour,
        seed=args.seed,
        label_share=args.label_share,
        label_delay_hours=args.label_delay_hours,
        privacy=args.log_privacy,
        max_requests=args.max_requests,
        max_seconds=args.max_seconds,
        scenarios_path=args.scenarios,
    )
    c = info["counts"]
    print(
        f"[SIMULATE] scenario={info['scenario']} mode={info['mode']} days={info['days']} "
        f"messages={c['messages']} labelled={c['labelled']} errors={c['errors']} "
        f"drift_start={info['drift_start']} stopped_early_at={info['stopped_early_at']} "
        f"out={args.out}"
    )
    return 0


def _active_learn(args: argparse.Namespace) -> int:
    from mangaassist.monitor.active_learning import active_learn

    active_learn(
        args.logs,
        args.out,
        budget=args.budget,
        bundle=args.bundle,
        train=args.train,
        strategy=args.strategy,
        diversity=args.diversity,
        quota=args.per_intent_quota,
        seed=args.seed,
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``simulate`` and ``active-learn`` to the ``mangaassist`` command."""
    p = sub.add_parser(
        "simulate",
        help="write simulated prediction logs (with injected drift) and a delayed label sample",
        description="Simulated MangaAssist traffic over days, scenarios in "
        "conf/monitor/scenarios.yaml: stationary, sale_event, new_hit_title, jp_surge, "
        "broken_preprocessing, label_shift_slow.",
    )
    p.add_argument("--bundle", help="model bundle to call directly (fast; needed without --url)")
    p.add_argument("--url", help="replay against a running server instead (http://HOST:PORT)")
    p.add_argument("--scenario", default="stationary", help="scenario name (default stationary)")
    p.add_argument("--scenarios", help="scenario file (default conf/monitor/scenarios.yaml)")
    p.add_argument("--days", type=int, default=7, help="simulated days (default 7)")
    p.add_argument(
        "--rate-per-hour",
        type=float,
        default=600.0,
        help="mean messages per simulated hour (default 600: ~290 labels/day at 2%%)",
    )
    p.add_argument("--out", required=True, help="output directory (logs/, labels.jsonl, ...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label-share", type=float, default=0.02, help="labelled share (0.02)")
    p.add_argument("--label-delay-hours", type=float, default=24.0, help="label delay (24)")
    p.add_argument("--log-privacy", default="text", choices=("text", "hash", "none"))
    p.add_argument("--max-requests", type=int, default=5000, help="--url bound (5000)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="--url bound in s (120)")
    p.set_defaults(func=_simulate)

    p = sub.add_parser(
        "active-learn",
        help="pick the logged messages most worth labelling (JSONL + Excel-ready CSV)",
        description="Uncertainty sampling with k-means diversity, per-intent quotas and "
        "deduplication against the training data; needs logs written with log_privacy=text.",
    )
    p.add_argument("logs", nargs="+", help="prediction log files or directories")
    p.add_argument("--budget", type=int, default=500, help="messages to select (500)")
    p.add_argument("--out", default="to_label.jsonl", help="JSONL output; the CSV sits beside it")
    p.add_argument("--bundle", help="bundle to recompute full probabilities (recommended)")
    p.add_argument("--train", help="training data (JSONL/CSV): never re-select these messages")
    p.add_argument(
        "--strategy",
        default="entropy",
        choices=("least_confidence", "margin", "entropy", "random"),
    )
    p.add_argument("--diversity", default="kmeans", choices=("kmeans", "none"))
    p.add_argument(
        "--per-intent-quota",
        default="0.3",
        help="max share of the budget per predicted intent: 0.3, or 0.3,chitchat=0.05",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_active_learn)
