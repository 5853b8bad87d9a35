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
from mangaassist.comparison.runs import FailedRun, RunRecord
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


def model_rows(
    runs: Sequence[RunRecord], failed: Sequence[FailedRun], s: ModelSettings
) -> list[ModelRow]:
    """One row per candidate (then any other model with runs), costed."""
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
        latency = getattr(row, s.capacity_latency)
        if latency:
            cost = serving_cost(latency, s)
            row.instances, row.monthly_usd = cost.instances, cost.monthly_usd
        rows.append(row)
    costed = [r for r in rows if r.monthly_usd is not None and r.quality is not None]
    if costed:
        ref = min(costed, key=lambda r: (r.monthly_usd, -r.quality))
        for r in costed:
            if r is not ref:
                r.usd_per_point = cost_per_point(
                    r.monthly_usd, r.quality, ref.monthly_usd, ref.quality
                )
    return rows


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
        p95 = ", ".join(f"{r.model} {num(r.p95_ms, 1)} ms" for r in near)
        return "none", (
            f"no model {within} ({best.model} {pct(best.quality)}) has P95 under "
            f"{s.p95_budget_ms:g} ms: {p95}"
        )
    pick = min(ok, key=lambda r: (r.monthly_usd, -r.quality, r.p95_ms))
    return pick.model, (
        f"cheapest model {within} ({best.model} {pct(best.quality)}) with P95 under "
        f"{s.p95_budget_ms:g} ms: {pct(pick.quality)} {s.quality_metric}, "
        f"P95 {pick.p95_ms:.1f} ms, {pick.instances} x {s.instance_type} = "
        f"${pick.monthly_usd:,.0f}/month"
    )


def _cells(r: ModelRow, s: ModelSettings) -> list[str]:
    if r.unavailable:
        return [r.model, "0", "not available", *[DASH] * 11, _short(r.unavailable)]
    per_point = "reference" if r.usd_per_point is None and r.monthly_usd is not None else DASH
    if r.usd_per_point is not None:
        per_point = f"{r.usd_per_point:,.0f}"
    return [
        r.model,
        str(r.n),
        pct(r.quality),
        pct(r.acc),
        pct(r.macro_f1),
        num(r.p50_ms, 1),
        num(r.p95_ms, 1) + ("" if r.p95_ms is None or r.p95_ms < s.p95_budget_ms else " (over)"),
        r.runtime or DASH,
        DASH if r.params is None else f"{r.params / 1e6:.1f}",
        num(r.weights_mb, 1),
        num(r.peak_rss_mb, 0),
        DASH if r.instances is None else str(r.instances),
        DASH if r.monthly_usd is None else f"{r.monthly_usd:,.0f}",
        per_point,
        "",
    ]


def models_table(
    runs: Sequence[RunRecord], failed: Sequence[FailedRun], out_dir: Path, s: ModelSettings
) -> list[str]:
    """Write ``models.md`` / ``models.csv``; returns ``[MODEL_BENCH]`` and ``[DECISION]`` lines."""
    rows = model_rows(runs, failed, s)
    selected, reason = decide(rows, s)
    headers = [
        "model", "runs", f"{s.quality_metric} % (ranks)", "test acc %", "test macro F1 %",
        "P50 ms", "P95 ms", "runtime", "params (M)", "weights MB", "train peak RSS MB",
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
        "Latency: batch-1 as served (eval/summary.json, one thread), on the runtime named beside "
        "it (ONNX Runtime serves; PyTorch eager is slower: compare rows timed alike). "
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
    write_text(out_dir / "models.md", "\n".join(md) + "\n")
    lines = []
    for r in rows:
        if r.unavailable:
            why = _short(r.unavailable)
            lines.append(f'[MODEL_BENCH] model={r.model} status=not_available reason="{why}"')
            continue
        monthly = DASH if r.monthly_usd is None else f"{r.monthly_usd:.2f}"
        lines.append(
            f"[MODEL_BENCH] model={r.model} n={r.n} quality={pct(r.quality)} "
            f"acc={pct(r.acc)} macro_f1={pct(r.macro_f1)} "
            f"p50_ms={num(r.p50_ms, 2)} p95_ms={num(r.p95_ms, 2)} "
            f"params_m={DASH if r.params is None else f'{r.params / 1e6:.1f}'} "
            f"weights_mb={num(r.weights_mb, 1)} instances={r.instances or DASH} "
            f"monthly_usd={monthly}"
        )
    lines.append(f'[DECISION] selected={selected} reason="{reason}"')
    return lines
