"""The model selection table: quality, served latency, memory and monthly cost per encoder.

Runs are grouped by ``model.name`` (mean over seeds). Every model listed in
``models.candidates`` appears: one without a finished run is a "not available" row (with the
failed job's error when the sweep left one). Rule: the cheapest model whose quality metric
(``models.quality_metric``: validation macro F1 of the best epoch, from ``metrics.json``) is
within ``f1_tolerance_points`` of the best and whose P95 is under the budget. Test accuracy
and macro F1 are shown beside, never used to choose: a model picked on test figures would
report a test score biased upward by the choice. Writes ``models.md`` and ``models.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mangaassist.atomic import write_text
from mangaassist.comparison.plots import frontier
from mangaassist.comparison.runs import FailedRun, RunRecord
from mangaassist.comparison.served import Served
from mangaassist.comparison.serving_cost import cost_per_point, serving_cost, weights_info
from mangaassist.comparison.settings import ModelSettings
from mangaassist.comparison.tables import DASH, markdown, mean_std, num, pct, write_csv


@dataclass
class ModelRow:
    """One candidate: its figures (means over its runs), or why it is not available."""

    model: str
    n: int = 0
    acc: float | None = None
    macro_f1: float | None = None
    quality: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    runtime: str | None = None  # what timed the latency; "a+b" when the runs differ
    params: int | None = None
    weights_mb: float | None = None
    peak_rss_mb: float | None = None
    instances: int | None = None
    monthly_usd: float | None = None
    usd_per_point: float | None = None
    unavailable: str | None = None
    precision: str = "fp32"
    rare_recall: float | None = None  # test split, shown beside
    golden_acc: float | None = None  # shown beside, never used to choose
    golden_ci: tuple[float, float] | None = None  # 95% (Wilson when timed by --served)
    train_minutes: float | None = None
    b32_msgs_per_s: float | None = None  # --served: sustained throughput at batch 32
    reference: bool = False  # the cheapest row, which cost per point is measured against


def _short(text: str, limit: int = 160) -> str:
    """The first sentence of an error message, at most ``limit`` characters."""
    first = text.split(". ")[0].strip()
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _mean(runs: Sequence[RunRecord], key: str) -> float | None:
    s = mean_std(r.metric(key) for r in runs)
    return None if s is None else s.mean


def _peak_rss(runs: Sequence[RunRecord]) -> float | None:
    peaks = []
    for r in runs:
        h = r.history()
        if h is not None and "train/peak_mem_mb" in h.columns:
            peaks.append(float(h["train/peak_mem_mb"].max()))
    return max(peaks) if peaks else None


def _served_mean(served: Sequence[Served], model: str, precision: str, key: str) -> float | None:
    values = [getattr(x, key) for x in served if x.model == model and x.precision == precision]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _apply_served(row: ModelRow, served: Sequence[Served]) -> None:
    """Latency, throughput and golden accuracy of ``row`` from the bench, where it timed it."""
    for key in ("p50_ms", "p95_ms", "b32_msgs_per_s", "golden_acc"):
        setattr(row, key, _served_mean(served, row.model, row.precision, key))
    lo = _served_mean(served, row.model, row.precision, "golden_lo")
    hi = _served_mean(served, row.model, row.precision, "golden_hi")
    row.golden_ci = None if lo is None or hi is None else (lo, hi)
    row.runtime = "onnxruntime (--served)"


def _int8_row(fp32: ModelRow, served: Sequence[Served], run_dir: Path) -> ModelRow | None:
    """The int8 graph of a candidate as its own row; None when no int8 was timed."""
    if not any(x.model == fp32.model and x.precision == "int8" for x in served):
        return None
    row = ModelRow(**{**vars(fp32), "precision": "int8"})
    # The test split was scored with the fp32 graph only: no test figure for this one.
    row.acc = row.macro_f1 = row.rare_recall = None
    _apply_served(row, served)
    delta = _served_mean(served, fp32.model, "int8", "int8_val_macro_f1_delta")  # points
    # Validation macro F1 of the int8 graph: the fp32 figure moved by the export's own int8
    # check (both graphs scored on the same validation messages when the bundle was made).
    row.quality = None if delta is None or fp32.quality is None else fp32.quality + delta / 100
    int8 = run_dir / "export" / "model.int8.onnx"
    row.weights_mb = int8.stat().st_size / 2**20 if int8.is_file() else None
    return row


def model_rows(
    runs: Sequence[RunRecord],
    failed: Sequence[FailedRun],
    s: ModelSettings,
    served: Sequence[Served] = (),
) -> list[ModelRow]:
    """One row per candidate (then any other model with runs), costed.

    With ``served`` (:func:`mangaassist.comparison.served.bench_served`), latency, throughput
    and golden accuracy come from that one bench, and each int8 graph is a row of its own.
    """
    by_model: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_model.setdefault(r.model, []).append(r)
    rows = []
    for name in [*s.candidates, *sorted(set(by_model) - set(s.candidates))]:
        group = by_model.get(name)
        if not group:
            why = next((f.error for f in failed if f.choice("model") == name), None)
            rows.append(
                ModelRow(
                    name,
                    unavailable=why
                    or "no finished run among the inputs (weights missing? the run stops at "
                    f"once without them; see conf/model/{name}.yaml: model.name_or_path)",
                )
            )
            continue
        row = ModelRow(name, n=len(group), acc=_mean(group, "test/acc"))
        row.macro_f1, row.quality = _mean(group, "test/macro_f1"), _mean(group, s.quality_metric)
        row.p50_ms, row.p95_ms = _mean(group, "latency/p50_ms"), _mean(group, "latency/p95_ms")
        row.runtime = "+".join(sorted({t for r in group if (t := r.timed_by)})) or None
        row.params, row.weights_mb = weights_info(group[0].path)
        row.peak_rss_mb = _peak_rss(group)
        row.rare_recall, row.train_minutes = (
            _mean(group, "test/rare_recall"),
            _mean(group, "train_minutes"),
        )
        row.golden_acc = _mean(group, "golden/acc")
        family = [row]
        if any(x.model == name for x in served):
            _apply_served(row, served)
            family.append(_int8_row(row, served, group[0].path))
        for r in filter(None, family):
            latency = getattr(r, s.capacity_latency)
            if latency:
                cost = serving_cost(latency, s)
                r.instances, r.monthly_usd = cost.instances, cost.monthly_usd
            rows.append(r)
    costed = [r for r in rows if r.monthly_usd is not None and r.quality is not None]
    if costed:
        ref = min(costed, key=lambda r: (r.monthly_usd, -r.quality))
        ref.reference = True
        for r in costed:
            if r is not ref:
                r.usd_per_point = cost_per_point(
                    r.monthly_usd, r.quality, ref.monthly_usd, ref.quality
                )
    return rows


def label(r: ModelRow) -> str:
    """The row's name: the model, with `` int8`` for its quantised graph."""
    return r.model if r.precision == "fp32" else f"{r.model} {r.precision}"


def decide(rows: Sequence[ModelRow], s: ModelSettings) -> tuple[str, str]:
    """(selected model or ``none``, the reason), by the rule in the module docstring."""
    scored = [r for r in rows if r.quality is not None]
    if not scored:
        return "none", f"no model has a {s.quality_metric} figure (no finished, evaluated run)"
    best = max(scored, key=lambda r: r.quality)
    near = [r for r in scored if 100 * (best.quality - r.quality) <= s.f1_tolerance_points]
    ok = [r for r in near if r.p95_ms is not None and r.p95_ms < s.p95_budget_ms]
    ok = [r for r in ok if r.monthly_usd is not None]
    tol = s.f1_tolerance_points
    within = f"within {tol:g} point{'' if tol == 1 else 's'} of the best {s.quality_metric}"
    if not ok:
        p95 = ", ".join(f"{label(r)} {num(r.p95_ms, 1)} ms" for r in near)
        return "none", (
            f"no model {within} ({label(best)} {pct(best.quality)}) has P95 under "
            f"{s.p95_budget_ms:g} ms: {p95}"
        )
    pick = min(ok, key=lambda r: (r.monthly_usd, -r.quality, r.p95_ms))
    return label(pick), (
        f"cheapest model {within} ({label(best)} {pct(best.quality)}) with P95 under "
        f"{s.p95_budget_ms:g} ms: {pct(pick.quality)} {s.quality_metric}, "
        f"P95 {pick.p95_ms:.1f} ms, {pick.instances} x {s.instance_type} = "
        f"${pick.monthly_usd:,.0f}/month"
    )


def _golden_cell(r: ModelRow) -> str:
    if r.golden_ci is None:
        return pct(r.golden_acc)
    return f"{pct(r.golden_acc)} ({pct(r.golden_ci[0])}-{pct(r.golden_ci[1])})"


def _cells(r: ModelRow, s: ModelSettings) -> list[str]:
    if r.unavailable:
        return [r.model, "0", "not available", *[DASH] * 15, _short(r.unavailable)]
    per_point = "reference" if r.reference else DASH  # DASH: no gain over the reference
    if r.usd_per_point is not None:
        per_point = f"{r.usd_per_point:,.0f}"
    return [
        label(r),
        str(r.n),
        pct(r.quality),
        pct(r.acc),
        pct(r.macro_f1),
        pct(r.rare_recall),
        _golden_cell(r),
        num(r.p50_ms, 1),
        num(r.p95_ms, 1) + ("" if r.p95_ms is None or r.p95_ms < s.p95_budget_ms else " (over)"),
        r.runtime or DASH,
        DASH if r.b32_msgs_per_s is None else f"{r.b32_msgs_per_s:,.0f}",
        DASH if r.params is None else f"{r.params / 1e6:.1f}",
        num(r.weights_mb, 1),
        num(r.peak_rss_mb, 0),
        num(r.train_minutes, 1),
        DASH if r.instances is None else str(r.instances),
        DASH if r.monthly_usd is None else f"{r.monthly_usd:,.0f}",
        per_point,
        "",
    ]


def models_table(
    runs: Sequence[RunRecord],
    failed: Sequence[FailedRun],
    out_dir: Path,
    s: ModelSettings,
    served: Sequence[Served] = (),
) -> list[str]:
    """Write ``models.md`` / ``models.csv`` (and ``frontier.png``); returns ``[MODEL_BENCH]``
    and ``[DECISION]`` lines. ``served``: the one-process bench of the bundles (see model_rows).
    """
    rows = model_rows(runs, failed, s, served)
    selected, reason = decide(rows, s)
    headers = [
        "model", "runs", f"{s.quality_metric} % (ranks)", "test acc %", "test macro F1 %",
        "test rare recall %", "golden acc % (95% CI)", "P50 ms", "P95 ms", "runtime",
        "batch-32 msg/s", "params (M)", "weights MB", "train peak RSS MB", "train min",
        "instances", "USD/month", "USD/month per extra point", "note",
    ]  # fmt: skip
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "models.csv", [vars(r) for r in rows])
    lat = s.capacity_latency.removesuffix("_ms").upper()
    md = [
        "# Model selection",
        "",
        markdown(headers, [_cells(r, s) for r in rows]),
        "",
        (
            "Latency, batch-32 throughput and golden accuracy: every bundle timed in one process "
            "by `--served` (fp32 and int8 graphs, ONNX Runtime, one thread, interleaved rounds; "
            "served.json); golden interval 95% Wilson. An int8 row's validation figure is the "
            "fp32 one moved by the export's int8 check on validation. "
            if served
            else "Latency: batch-1 as served (eval/summary.json, one thread), on the runtime "
            "named beside it (ONNX Runtime serves; PyTorch eager is slower: compare rows timed "
            "alike). "
        ),
        f"Cost: capacity per instance = {s.workers_per_instance} workers x 1000 / {lat} ms "
        f"x {s.utilisation:g} utilisation; "
        f"instances = max({s.min_instances}, ceil({s.target_rps:g} req/s / capacity)); "
        f"{s.instance_type} at ${s.price_per_hour:g}/hour x {s.hours_per_month:g} h/month. "
        f"Per extra point: extra USD/month per point of {s.quality_metric} over the cheapest "
        "model (the reference). Peak RSS is the training process's (history.csv). "
        f"Ranking: on {s.quality_metric} (validation, the best epoch's); test figures are "
        "shown beside, never used to choose.",
        "",
        f"**Decision:** selected={selected}: {reason}",
    ]
    points = [(label(r), r.p95_ms, 100 * r.quality) for r in rows if r.p95_ms and r.quality]
    if points:
        frontier(points, s.p95_budget_ms, out_dir / "frontier.png")
        md[4:4] = ["![frontier](frontier.png)", ""]
    write_text(out_dir / "models.md", "\n".join(md) + "\n")
    lines = []
    for r in rows:
        if r.unavailable:
            why = _short(r.unavailable)
            lines.append(f'[MODEL_BENCH] model={label(r)} status=not_available reason="{why}"')
            continue
        monthly = DASH if r.monthly_usd is None else f"{r.monthly_usd:.2f}"
        lines.append(
            f"[MODEL_BENCH] model={label(r)} n={r.n} quality={pct(r.quality)} "
            f"acc={pct(r.acc)} macro_f1={pct(r.macro_f1)} "
            f"p50_ms={num(r.p50_ms, 2)} p95_ms={num(r.p95_ms, 2)} "
            f"params_m={DASH if r.params is None else f'{r.params / 1e6:.1f}'} "
            f"golden_acc={pct(r.golden_acc)} b32_msgs_per_s={num(r.b32_msgs_per_s, 0)} "
            f"train_min={num(r.train_minutes, 1)} "
            f"weights_mb={num(r.weights_mb, 1)} instances={r.instances or DASH} "
            f"monthly_usd={monthly}"
        )
    lines.append(f'[DECISION] selected={selected} reason="{reason}"')
    return lines
