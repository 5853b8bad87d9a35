"""The public benchmarks table: our BANKING77 / CLINC150 figures beside the published ones.

Runs are grouped by (``data.name``, ``model.name``), mean ± std over seeds. The published
figures, the metric of ours each is put beside, and their sources come from the
``benchmarks`` block of ``conf/comparison/published.yaml``; a data set without published
figures shows test accuracy only. Writes ``benchmarks.md`` and ``benchmarks.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mangaassist.comparison.runs import FailedRun, RunRecord
from mangaassist.comparison.tables import DASH, fmt_stat, markdown, mean_std, write_csv
from mangaassist.errors import UserError

DEFAULT_FIGURES = {"accuracy": {"metric": "test/acc", "value": None, "setting": ""}}


def benchmark_rows(runs: Sequence[RunRecord], published: dict) -> list[dict]:
    """One dict per (data, model, figure): ours (mean, std, n) and the published value."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        groups.setdefault((str(r.get("data.name", "?")), r.model), []).append(r)
    order = {name: i for i, name in enumerate(published)}
    rows = []
    for (data, model), group in sorted(
        groups.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0])
    ):
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
                    "_stat": stat,
                }
            )
    return rows


def benchmarks_table(
    runs: Sequence[RunRecord],
    failed: Sequence[FailedRun],
    out_dir: Path,
    published: dict | None,
) -> list[str]:
    """Write ``benchmarks.md`` / ``benchmarks.csv``; returns the ``[BENCHMARK]`` lines.

    Args:
        published: the ``benchmarks`` block of ``published.yaml`` ({} = ours only).
    """
    if not runs:
        raise UserError("no finished runs to build the benchmarks table from; pass run folders")
    rows = benchmark_rows(runs, published or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(
        out_dir / "benchmarks.csv", [{k: v for k, v in r.items() if k != "_stat"} for r in rows]
    )
    headers = ["data", "model", "figure", "ours %", "runs", "published %", "published setting"]
    cells = [
        [
            r["data"],
            r["model"],
            r["figure"],
            fmt_stat(r["_stat"]),
            str(r["n"]),
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
        "confidence is below the fallback threshold (per-intent from calibration.json).",
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
    (out_dir / "benchmarks.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    lines = [
        f"[BENCHMARK] data={r['data']} model={r['model']} figure={r['figure']!r} "
        f"ours={fmt_stat(r['_stat'])} n={r['n']} "
        f"published={DASH if r['published'] is None else r['published']}"
        for r in rows
    ]
    lines += [f"[BENCHMARK] failed={f.path} reason={f.error!r}" for f in failed]
    lines.append(f"[BENCHMARK] out={out_dir / 'benchmarks.md'}")
    return lines
