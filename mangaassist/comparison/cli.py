"""``mangaassist compare``: side-by-side runs, or one reproduced table.

    mangaassist compare RUN_DIR_OR_GLOB... [--out DIR] [--by loss|model|data|KEY]
    mangaassist compare ablation|models|benchmarks RUNS... [--out DIR]
    mangaassist compare models RUNS... --served --out DIR   # time the bundles, fp32 and int8
    mangaassist compare benchmarks DIR/eval_summary_*.json --data NAME --model NAME \
        [--keep OLD/benchmarks.csv] --out DIR

A first argument that names a table picks it (a run folder with such a name: ``./ablation``).
Exit status 0, or 2 for a user error (printed by :mod:`mangaassist.cli`).
"""

from __future__ import annotations

import argparse

from mangaassist.errors import UserError

TABLE_NAMES = ("ablation", "models", "benchmarks")


def _compare(args: argparse.Namespace) -> int:
    from mangaassist.comparison.build import write_table

    paths = list(args.runs)
    table = paths.pop(0) if paths[0] in TABLE_NAMES else "compare"
    if not paths:
        raise UserError(
            f"'compare {table}' needs run folders after it, e.g. "
            f"mangaassist compare {table} multirun/<time>/ --out experiments/<name>/"
        )
    out = args.out or ("comparison" if table == "compare" else f"comparison/{table}")
    for line in write_table(
        table,
        paths,
        out,
        by=args.by,
        settings_path=args.config,
        published_path=args.published,
        kept={"data": args.data, "model": args.model} if args.data or args.model else None,
        keep=args.keep,
        served=args.served,
        served_from=args.served_from,
    ):
        print(line)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the top-level parser."""
    cmp = sub.add_parser(
        "compare",
        help="compare runs side by side, or write the ablation / models / benchmarks table",
        description="Compare finished runs (the offline W&B view), or with a first argument "
        "ablation, models or benchmarks, write that reproduced table.",
    )
    cmp.add_argument(
        "runs",
        nargs="+",
        metavar="[TABLE] RUN",
        help="optional table name (ablation, models, benchmarks), then run folders, globs, "
        "folders above runs (a multirun sweep folder), or kept eval_summary_*.json files",
    )
    cmp.add_argument(
        "--data", help="the data set of the kept eval_summary_*.json files given (data.name)"
    )
    cmp.add_argument(
        "--model", help="the model of the kept eval_summary_*.json files given (model.name)"
    )
    cmp.add_argument(
        "--keep",
        metavar="CSV",
        help="benchmarks: an earlier benchmarks.csv; its rows for data sets/models that none "
        "of the runs given rebuilds are carried over as they are, marked 'earlier build'",
    )
    cmp.add_argument(
        "--out", help="output folder (default comparison/, or comparison/<table>/ for a table)"
    )
    cmp.add_argument(
        "--by",
        help="group/sort key: loss, model, data or any dotted config key "
        "(ablation default: conf/comparison ablation.by)",
    )
    cmp.add_argument(
        "--served",
        action="store_true",
        help="models: time every run's exported bundle (fp32 and int8, ONNX Runtime, one "
        "thread) in this process, interleaved, for latency, batch-32 throughput and golden "
        "accuracy (export each run first: mangaassist export RUN --quantize int8)",
    )
    cmp.add_argument(
        "--served-from",
        metavar="JSON",
        help="models: read the figures of an earlier --served bench (its served.json) "
        "instead of timing again",
    )
    cmp.add_argument("--config", help="settings YAML (default conf/comparison/default.yaml)")
    cmp.add_argument(
        "--published", help="published figures YAML (default conf/comparison/published.yaml)"
    )
    cmp.set_defaults(func=_compare)
