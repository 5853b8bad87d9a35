"""One entry point for every table, shared by the command line and the Hydra callback."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mangaassist.comparison.runs import find_runs
from mangaassist.comparison.settings import load_published, load_settings
from mangaassist.errors import UserError

TABLES = ("compare", "ablation", "models", "benchmarks")


def write_table(
    table: str,
    patterns: Sequence[str],
    out_dir: str | Path,
    *,
    by: str | None = None,
    settings_path: str | Path | None = None,
    published_path: str | Path | None = None,
    kept: dict[str, str] | None = None,
    keep: str | Path | None = None,
    served: bool = False,
    served_from: str | Path | None = None,
) -> list[str]:
    """Find the runs, write one table's files into ``out_dir``, return the lines to print.

    Args:
        table: ``compare`` (side by side), ``ablation``, ``models`` or ``benchmarks``.
        patterns: run folders, globs, or folders above runs (a multirun sweep folder).
        out_dir: the output folder (created).
        by: grouping/sorting key (``loss``, ``model``, ``data`` or any dotted config key).
        settings_path: comparison settings YAML (default ``conf/comparison/default.yaml``).
        published_path: published figures YAML (default ``conf/comparison/published.yaml``).
        kept: ``{"data": ..., "model": ...}`` for kept ``eval_summary_*.json`` files among
            ``patterns`` (the files do not record them).
        keep: ``benchmarks`` only: an earlier ``benchmarks.csv`` whose rows for data sets
            and models nothing in ``patterns`` rebuilds are carried over, marked as such.
        served: ``models`` only: time every run's exported bundle (fp32 and int8) in this
            process and take latency, throughput and golden accuracy from that bench
            (:mod:`mangaassist.comparison.served`; ``served.json`` in ``out_dir``).
        served_from: ``models`` only: a ``served.json`` of an earlier ``served`` bench, read
            instead of timing again (the table re-rendered from the same figures).

    Raises:
        UserError: unknown table, no runs found, or bad settings.
    """
    if table not in TABLES:
        raise UserError(f"unknown table '{table}'; use one of {list(TABLES)}")
    if served and served_from is not None:
        raise UserError("give --served (time now) or --served-from FILE (reuse), not both")
    if (served or served_from is not None) and table != "models":
        raise UserError(f"--served times the bundles of the models table only, not '{table}'")
    if keep is not None and table != "benchmarks":
        raise UserError(f"--keep carries over rows of the benchmarks table only, not '{table}'")
    settings = load_settings(settings_path)
    published = load_published(published_path)
    runs, failed = find_runs(list(patterns), kept)
    out_dir = Path(out_dir)
    if table == "compare":
        from mangaassist.comparison.compare import compare

        return compare(runs, failed, out_dir, by=by)
    if table == "ablation":
        from mangaassist.comparison.ablation import ablation_table

        return ablation_table(
            runs, failed, out_dir, settings.ablation, published.get("ablation"), by=by
        )
    if table == "models":
        from mangaassist.comparison.model_selection import models_table

        bench = _served(runs, out_dir) if served else ()
        if served_from is not None:
            from mangaassist.comparison.served import read_served

            bench = read_served(Path(served_from))
        return models_table(runs, failed, out_dir, settings.models, bench)
    from mangaassist.comparison.benchmarks import benchmarks_table, kept_rows

    rows = kept_rows(Path(keep)) if keep is not None else ()
    return benchmarks_table(runs, failed, out_dir, published.get("benchmarks"), rows)


def _served(runs, out_dir: Path):  # -> list[mangaassist.comparison.served.Served]
    """The one-process bench of every run's bundle, on the first run's validation messages."""
    from mangaassist.comparison.served import bench_served, write_served
    from mangaassist.data.schema import read_examples
    from mangaassist.evaluation.after_training import GOLDEN

    if not runs:
        raise UserError("--served: no finished runs to time")
    val = runs[0].path / "data" / "val.jsonl"
    if not val.is_file():
        raise UserError(f"{val}: missing; --served times on the run's validation messages")
    texts = [e.text for e in read_examples(val)]
    rows = bench_served(runs, texts, read_examples(GOLDEN))
    write_served(rows, out_dir / "served.json")
    return rows
