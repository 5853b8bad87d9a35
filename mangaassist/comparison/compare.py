"""``mangaassist compare RUNS...``: the offline side-by-side view of runs (what W&B would show).

Writes ``comparison.md``, ``comparison.csv``, ``headline.png`` and one
``curves_val_<metric>.png`` per validation metric of the runs' ``history.csv``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from mangaassist.atomic import write_text
from mangaassist.comparison import plots
from mangaassist.comparison.runs import FailedRun, RunRecord, config_key
from mangaassist.comparison.tables import console, markdown, num, pct
from mangaassist.errors import UserError

P95 = "latency/p95_ms"
# (header, metric key, formatter); a column no run has is left out.
METRIC_COLUMNS: tuple[tuple[str, str, Callable[[float | None], str]], ...] = (
    ("best val mF1", "best/val/macro_f1", pct),
    ("test acc", "test/acc", pct),
    ("test mF1", "test/macro_f1", pct),
    ("test rare", "test/rare_recall", pct),
    ("ECE before", "test/ece_before", num),
    ("ECE after", "test/ece_after", num),
    ("in-scope acc", "test/in_scope_acc", pct),
    ("OOS recall", "test/oos_recall", pct),
    ("golden acc", "golden/acc", pct),
    ("golden mF1", "golden/macro_f1", pct),
    ("golden rare", "golden/rare_recall", pct),
    ("P95 ms", P95, lambda v: num(v, 1)),
    ("train min", "train_minutes", lambda v: num(v, 1)),
)
# Latency differs by runtime (ONNX Runtime serves; PyTorch eager is slower): rows say which.
RUNTIME_SHORT = {"onnxruntime": "ORT", "torch": "PyTorch"}
BAR_METRICS = ("test/acc", "test/macro_f1", "test/rare_recall", "golden/acc")


def _with_runtime(cell: str, r: RunRecord) -> str:
    runtime = r.timed_by
    return cell if runtime is None else f"{cell} ({RUNTIME_SHORT.get(runtime, runtime)})"


def run_labels(runs: Sequence[RunRecord]) -> list[str]:
    """``run_name``, with the folder name added where two runs share a name."""
    counts = Counter(r.name for r in runs)
    return [r.name if counts[r.name] == 1 else f"{r.name} ({r.path.name})" for r in runs]


def sort_runs(runs: Sequence[RunRecord], by: str | None) -> list[RunRecord]:
    """Runs ordered by ``by`` (a config key or short name), then seed and name."""
    key = config_key(by) if by else None

    def order(r: RunRecord) -> tuple:
        return (str(r.get(key, "")) if key else "", str(r.get("seed", "")), r.name, str(r.path))

    return sorted(runs, key=order)


def comparison_rows(runs: Sequence[RunRecord]) -> tuple[list[str], list[list[str]], list[dict]]:
    """Headers, formatted rows and raw CSV rows of the side-by-side table."""
    columns = [c for c in METRIC_COLUMNS if any(r.metric(c[1]) is not None for r in runs)]
    headers = ["run", "data", "model", "loss", "seed", "epochs", *(c[0] for c in columns)]
    timed = any(k == P95 for _, k, _ in columns)
    rows, raw = [], []
    for label, r in zip(run_labels(runs), runs, strict=True):
        epochs = r.metric("epochs_trained")
        best = r.metric("best_epoch")
        ep = (
            "–"
            if epochs is None
            else f"{epochs:.0f}" + ("" if best is None else f" (best {best:.0f})")
        )
        ident = [label, str(r.get("data.name", "?")), r.model, str(r.get("loss.name", "?"))]
        cells = [
            _with_runtime(f(r.metric(k)), r) if k == P95 else f(r.metric(k)) for _, k, f in columns
        ]
        rows.append([*ident, str(r.get("seed", "?")), ep, *cells])
        raw.append(
            {
                "run": label,
                "path": str(r.path),
                "data": ident[1],
                "model": ident[2],
                "loss": ident[3],
                "seed": r.get("seed"),
                "epochs_trained": epochs,
                "best_epoch": best,
                **{k: r.metric(k) for _, k, _ in columns},
                **({"latency/runtime": r.latency_runtime} if timed else {}),
            }
        )
    return headers, rows, raw


def compare(
    runs: Sequence[RunRecord],
    failed: Sequence[FailedRun],
    out_dir: Path,
    by: str | None = None,
) -> list[str]:
    """Write the comparison files into ``out_dir``; returns the lines to print.

    Raises:
        UserError: no finished run to compare.
    """
    if not runs:
        raise UserError(
            f"nothing to compare: {len(failed)} job(s) found but none finished "
            f"({', '.join(str(f.path) for f in failed[:3])}); rerun them or pass finished runs"
        )
    from mangaassist.comparison.tables import write_csv

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = sort_runs(runs, by)
    headers, rows, raw = comparison_rows(runs)
    labels = run_labels(runs)
    histories = {
        lab: h for lab, r in zip(labels, runs, strict=True) if (h := r.history()) is not None
    }
    images = plots.validation_curves(histories, out_dir)
    bars = {
        k: [r.metric(k) for r in runs]
        for k in BAR_METRICS
        if any(r.metric(k) is not None for r in runs)
    }
    images.append(plots.headline_bars(labels, bars, out_dir / "headline.png"))
    write_csv(out_dir / "comparison.csv", raw)
    md = [
        f"# Comparison of {len(runs)} run{'' if len(runs) == 1 else 's'}"
        + (f" (by {config_key(by)})" if by else ""),
        "",
        "Percentages except ECE (a fraction, before and after temperature scaling), latency and "
        "minutes. Test and golden figures come from eval/summary.json (post-training "
        "evaluation), `best val mF1` from the best validation epoch.",
        "",
        markdown(headers, rows),
        "",
        *(f"- `{lab}`: `{r.path}`" for lab, r in zip(labels, runs, strict=True)),
    ]
    if failed:
        md += ["", "## Jobs without results", ""]
        md += [
            f"- `{f.path}` ({' '.join(f.overrides) or 'no overrides'}): {f.error}" for f in failed
        ]
    md += ["", *(f"![{p.stem}]({p.name})" for p in images)]
    write_text(out_dir / "comparison.md", "\n".join(md) + "\n")
    lines = [console(headers, rows)]
    lines += [f"[COMPARE] failed={f.path} reason={f.error!r}" for f in failed]
    lines.append(f"[COMPARE] runs={len(runs)} out={out_dir} files=comparison.md,comparison.csv")
    return lines
