"""The public benchmarks table: our BANKING77 / CLINC150 figures beside the published ones.

Runs are grouped by (``data.name``, ``model.name``), mean ± std over seeds. The published
figures, the metric of ours each is put beside, and their sources come from the
``benchmarks`` block of ``conf/comparison/published.yaml``; a data set without published
figures shows test accuracy only. Writes ``benchmarks.md`` and ``benchmarks.csv``.

Each row says what ours is built from (``built_from``): ``run folders``, ``kept summaries``
(``eval_summary_*.json`` kept after the run folders went, see
:mod:`mangaassist.comparison.runs`), or ``earlier build``: a row carried over as it was from
an earlier ``benchmarks.csv`` (``keep``) because nothing given rebuilds its data set and model.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from mangaassist.atomic import write_text
from mangaassist.comparison.runs import FailedRun, RunRecord
from mangaassist.comparison.tables import DASH, Stat, fmt_stat, markdown, mean_std, write_csv
from mangaassist.errors import UserError

DEFAULT_FIGURES = {"accuracy": {"metric": "test/acc", "value": None, "setting": ""}}
EARLIER = "earlier build"
_CSV_KEYS = ("data", "model", "figure", "ours_mean", "ours_std", "n")


def _built_from(group: Sequence[RunRecord]) -> str:
    kinds = sorted({"kept summaries" if r.kept else "run folders" for r in group})
    return " + ".join(reversed(kinds))


def kept_rows(path: Path) -> list[dict]:
    """The rows of an earlier ``benchmarks.csv``, to carry over those nothing rebuilds.

    Raises:
        UserError: the file is missing or lacks the table's columns.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise UserError(f"{path}: cannot read the earlier benchmarks table ({err})") from err
    lacking = [k for k in _CSV_KEYS if rows and k not in rows[0]]
    if not rows or lacking:
        raise UserError(
            f"{path}: not a benchmarks.csv (no rows, or missing columns {lacking}); pass the "
            "benchmarks.csv an earlier `mangaassist compare benchmarks` wrote"
        )
    out = []
    for r in rows:
        n = int(r["n"] or 0)
        mean = float(r["ours_mean"]) / 100 if r["ours_mean"] else None
        std = float(r["ours_std"] or 0) / 100
        out.append(
            {
                "data": r["data"],
                "model": r["model"],
                "figure": r["figure"],
                "metric": r.get("metric", ""),
                "ours_mean": None if mean is None else 100 * mean,
                "ours_std": None if mean is None else 100 * std,
                "n": n,
                "published": float(r["published"]) if r.get("published") else None,
                "setting": r.get("setting", ""),
                "source": r.get("source", ""),
                "built_from": EARLIER,  # whatever built it before, it is not rebuilt now
                "_stat": None if mean is None else Stat(mean, std, n),
            }
        )
    return out


def benchmark_rows(
    runs: Sequence[RunRecord], published: dict, keep: Sequence[dict] = ()
) -> list[dict]:
    """One dict per (data, model, figure): ours (mean, std, n) and the published value.

    Args:
        keep: rows of an earlier table (:func:`kept_rows`); those of a (data, model) that no
            run rebuilds are carried over, in the table's order.
    """
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        groups.setdefault((str(r.get("data.name", "?")), r.model), []).append(r)
    order = {name: i for i, name in enumerate(published)}
    rows = []
    for (data, model), group in groups.items():
        entry = published.get(data, {})
        for figure, spec in (entry.get("figures") or DEFAULT_FIGURES).items():
            stat = mean_std(r.metric(spec["metric"]) for r in group)
            rows.append(
                {
                    "data": data,
                    "model": model,
                    "figure": figure,
                    "metric": spec["metric"],
                    "ours_mean": None if stat is None else 100 * stat.mean,
                    "ours_std": None if stat is None else 100 * stat.std,
                    "n": 0 if stat is None else stat.n,
                    "published": spec.get("value"),
                    "setting": spec.get("setting", ""),
                    "source": entry.get("source", ""),
                    "built_from": _built_from(group),
                    "_stat": stat,
                }
            )
    rows += [r for r in keep if (r["data"], r["model"]) not in groups]
    # Stable: figures keep their order within a (data, model).
    return sorted(rows, key=lambda r: (order.get(r["data"], 99), r["data"], r["model"]))


def benchmarks_table(
    runs: Sequence[RunRecord],
    failed: Sequence[FailedRun],
    out_dir: Path,
    published: dict | None,
    keep: Sequence[dict] = (),
) -> list[str]:
    """Write ``benchmarks.md`` / ``benchmarks.csv``; returns the ``[BENCHMARK]`` lines.

    Args:
        published: the ``benchmarks`` block of ``published.yaml`` ({} = ours only).
        keep: rows of an earlier table to carry over (see :func:`benchmark_rows`).
    """
    if not runs:
        raise UserError(
            "no finished runs to build the benchmarks table from; pass run folders or kept "
            "eval_summary_*.json files"
        )
    rows = benchmark_rows(runs, published or {}, keep)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(
        out_dir / "benchmarks.csv", [{k: v for k, v in r.items() if k != "_stat"} for r in rows]
    )
    headers = [
        "data",
        "model",
        "figure",
        "ours %",
        "runs",
        "ours from",
        "published %",
        "published setting",
    ]
    cells = [
        [
            r["data"],
            r["model"],
            r["figure"],
            fmt_stat(r["_stat"]),
            str(r["n"]),
            r["built_from"],
            DASH if r["published"] is None else f"{r['published']:.1f}",
            r["setting"],
        ]
        for r in rows
    ]
    sources = sorted({(r["data"], r["source"]) for r in rows if r["source"]})
    md = [
        "# Public benchmarks",
        "",
        "Ours: test split, mean ± sample std over runs (seeds). CLINC150 in-scope figures leave "
        "the out-of-scope queries out; an OOS query counts as detected when its calibrated top-1 "
        "confidence is below the fallback threshold (per-intent from calibration.json). "
        "Ours from: run folders, kept summaries (a run's eval/summary.json kept as "
        "eval_summary_*.json after its folder went), or earlier build (a row carried over "
        "unchanged from the table before, its runs no longer at hand).",
        "",
        markdown(headers, cells),
        "",
        "Sources:",
        "",
        *(f"- {data}: {source}" for data, source in sources),
    ]
    if failed:
        md += ["", "Jobs without results:", ""]
        md += [f"- `{f.path}` ({' '.join(f.overrides)}): {f.error}" for f in failed]
    write_text(out_dir / "benchmarks.md", "\n".join(md) + "\n")
    lines = [
        f"[BENCHMARK] data={r['data']} model={r['model']} figure={r['figure']!r} "
        f"ours={fmt_stat(r['_stat'])} n={r['n']} from={r['built_from'].replace(' ', '_')} "
        f"published={DASH if r['published'] is None else r['published']}"
        for r in rows
    ]
    lines += [f"[BENCHMARK] failed={f.path} reason={f.error!r}" for f in failed]
    lines.append(f"[BENCHMARK] out={out_dir / 'benchmarks.md'}")
    return lines
