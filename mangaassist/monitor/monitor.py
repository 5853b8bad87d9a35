"""The monitor run: logs -> windows -> signals -> alerts -> ``monitor.json`` and the dashboard.

:func:`run_monitor` does the work on one in-memory DuckDB connection (read once, one
``GROUP BY`` per window width, text tokens once) and returns the report; :func:`write_report`
writes ``monitor.json`` and ``dashboard.html`` atomically (temp file + ``os.replace``).

The report: ``reference`` (what live traffic is compared with), ``logs`` (files, skipped and
torn lines), ``labels`` (matched sample), ``windows`` (every window of every width, with all
its signals, ``intent_counts`` and, with labels, ``per_intent`` recall), ``alerts`` (fire and
clear events; a fired ``roi.rules`` alert carries ``roi``, its retrain ROI estimate),
``switches`` (registry promotions and rollbacks) and ``unavailable`` (signal -> why it is
missing).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from mangaassist.atomic import write_text
from mangaassist.errors import UserError
from mangaassist.monitor import accuracy, textdrift
from mangaassist.monitor.alerts import judge, roi_estimate
from mangaassist.monitor.drift import chi_square, kl_divergence
from mangaassist.monitor.logs import Logs, connect, load_logs
from mangaassist.monitor.reference import Reference, load_reference
from mangaassist.monitor.settings import (
    DEFAULT_CONFIG,
    MonitorSettings,
    RetrainCosts,
    load_costs,
    load_settings,
)
from mangaassist.monitor.switches import read_switches
from mangaassist.monitor.windows import intent_counts, window_rows

SAMPLED = ("sampled_n", "sampled_acc", "sampled_acc_lo", "sampled_acc_hi")
SAMPLED += ("rare_n", "rare_recall", "rare_recall_lo", "rare_recall_hi")
ERR_RATE_WHY = (
    "unavailable: the prediction log holds answered messages only; the error rate needs the "
    "server's /metrics (mangaassist_requests_total{status=...}) or logged error lines"
)


def _drift(
    rows: list[dict], con: duckdb.DuckDBPyConnection, seconds: int, ref: Reference, eps: float
) -> None:
    """kl_div, chi2, chi2_p and intent_counts into each row (None with no answered lines)."""
    counts, cols = intent_counts(con, seconds, [r["start"] for r in rows], ref.labels)
    q = np.append(ref.shares, np.zeros(len(cols) - len(ref.labels)))  # unknown intents: 0
    kl = kl_divergence(counts, q, eps)
    stat, pval = chi_square(counts, q, eps)
    for r, c, k, s, p in zip(rows, counts, kl, stat, pval, strict=True):
        has = c.sum() > 0
        r["kl_div"] = round(float(k), 6) if has else None
        r["chi2"] = round(float(s), 3) if has else None
        r["chi2_p"] = float(f"{p:.4g}") if has else None
        r["intent_counts"] = {name: int(x) for name, x in zip(cols, c, strict=True) if x}


def _ratio(x: float | None, ref: float | None) -> float | None:
    return None if x is None or not ref else round(x / ref, 4)


def run_monitor(
    logs: str | Path | Iterable[str | Path],
    reference: str | Path,
    *,
    labels: str | Path | None = None,
    settings: MonitorSettings | None = None,
    registry: str | Path | None = None,
    config_path: str | Path | None = None,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Monitor prediction logs against a reference; returns the report (see the module doc).

    Args:
        logs: log files or folders (``predictions-*.jsonl`` below them, workers included).
        reference: run directory, registry version, bundle with reference.json, or the file.
        labels: optional labelled sample (JSON lines: request_id, item, label).
        settings: loaded settings (default: ``config_path`` or conf/monitor/default.yaml).
        registry: registry folder: switches from its history.jsonl, ``v3``/``champion`` refs.
        config_path: where ``settings`` came from, for the report.
        warn: called with each problem found (skipped lines), naming the file.

    Raises:
        UserError: bad logs, reference, labels, registry or settings (the message says which).
    """
    settings = settings or load_settings(config_path)
    clock = {"start": time.perf_counter()}
    con = connect(settings.engine)
    # The cheap inputs first, so a wrong path fails before the long read.
    costs = load_costs(settings.roi.costs) if settings.roi.rules else None
    ref = load_reference(reference, con, settings, registry)
    switches = read_switches(registry)
    sample = accuracy.read_labels(labels, ref.labels) if labels is not None else None
    clock["reference_s"] = time.perf_counter()
    got = load_logs(logs, con, warn=warn)
    clock["read_s"] = time.perf_counter()
    widths = settings.window_seconds
    windows: list[dict[str, Any]] = []
    for kind, seconds in widths.items():
        rows = window_rows(con, kind, seconds, errors_logged=got.error_rows > 0)
        _drift(rows, con, seconds, ref, settings.kl_epsilon)
        windows += rows
    clock["windows_s"] = time.perf_counter()
    unavailable = _text_signals(windows, con, got, ref, widths)
    if got.error_rows == 0:
        unavailable["err_rate"] = ERR_RATE_WHY
    clock["text_s"] = time.perf_counter()
    label_info = None
    if sample is not None:
        label_info = _sampled(windows, con, sample, ref, settings, widths, str(labels))
    else:
        for key in ("sampled_acc", "rare_recall"):
            unavailable[key] = "unavailable (no --labels sample)"
        for w in windows:
            w.update({k: (0 if k.endswith("_n") else None) for k in SAMPLED}, per_intent={})
    clock["labels_s"] = time.perf_counter()
    thresholds = dict(settings.thresholds)
    events = judge(windows, settings.alerts.rules, settings.alerts, thresholds)
    if costs is not None:
        _price_alerts(events, windows, ref, settings, costs)
    clock["alerts_s"] = time.perf_counter()
    marks = list(clock.values())
    timings = {
        k: round(b - a, 3) for k, a, b in zip(list(clock)[1:], marks[:-1], marks[1:], strict=True)
    }
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": str(config_path or DEFAULT_CONFIG),
        "windows_seconds": widths,
        "thresholds": thresholds,
        "lines": {k: list(v) for k, v in settings.lines.items()},
        "reference": ref.summary(),
        "logs": got.summary(),
        "labels": label_info,
        "unavailable": unavailable,
        "windows": windows,
        "alerts": events,
        "switches": switches,
        "timings": timings,  # seconds per phase, for benchmarks
    }


def _read_number(path: Path, key: str) -> float | None:
    """``key`` of a JSON object file when it is a number; None when absent or unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def roi_context(
    ref: Reference, thresholds: dict[str, float], costs: RetrainCosts
) -> dict[str, Any]:
    """The baseline accuracy and training minutes a retrain estimate uses, and their sources.

    Baseline: the reference run's held-out test accuracy (``eval/test/metrics.json`` ``acc``),
    else the ``sampled_acc`` threshold (``target``). Minutes: ``cost.training_minutes`` when
    set, else the reference run's measured ``train_minutes`` (``metrics.json``), else
    ``cost.unmeasured_training_minutes``.
    """
    folder = Path(ref.source) if ref.kind in ("run", "registry") else None
    baseline_acc, baseline = None, "target"
    if folder is not None:
        baseline_acc = _read_number(folder / "eval" / "test" / "metrics.json", "acc")
        baseline = "test_acc" if baseline_acc is not None else baseline
    if baseline_acc is None:
        baseline_acc = thresholds.get("sampled_acc")
    measured = _read_number(folder / "metrics.json", "train_minutes") if folder else None
    if costs.training_minutes is not None:
        minutes, source = float(costs.training_minutes), "config"
    elif measured is not None:
        minutes, source = measured, f"measured ({folder.name}/metrics.json)"  # type: ignore[union-attr]
    else:
        minutes, source = float(costs.unmeasured_training_minutes), "unmeasured (config default)"
    return {
        "baseline_acc": baseline_acc,
        "baseline": baseline,
        "training_minutes": minutes,
        "minutes_source": source,
    }


def _price_alerts(
    events: list[dict[str, Any]],
    windows: list[dict[str, Any]],
    ref: Reference,
    settings: MonitorSettings,
    costs: RetrainCosts,
) -> None:
    """``roi`` into each fired alert of a ``roi.rules`` rule, from the window that fired it."""
    fired = [e for e in events if e["event"] == "fire" and e["rule"] in settings.roi.rules]
    if not fired:
        return
    ctx = roi_context(ref, dict(settings.thresholds), costs)
    by_key = {(w["kind"], w["start"]): w for w in windows}
    for e in fired:
        e["roi"] = roi_estimate(
            by_key[(e["window"], e["start"])],
            costs,
            window_seconds=settings.window_seconds[e["window"]],
            baseline_acc=ctx["baseline_acc"],
            baseline=ctx["baseline"],
            training_minutes=ctx["training_minutes"],
            minutes_source=ctx["minutes_source"],
        )


def _text_signals(
    windows: list[dict[str, Any]],
    con: duckdb.DuckDBPyConnection,
    got: Logs,
    ref: Reference,
    widths: dict[str, int],
) -> dict[str, str]:
    """new_vocab_share, jp_share_ratio, len_mean_ratio into each window; what is unavailable."""
    unavailable: dict[str, str] = {}
    if got.text_rows == 0:
        why = f"unavailable (log_privacy={got.privacy})"
        unavailable.update(new_vocab_share=why, jp_share=why, jp_share_ratio=why)
    elif not ref.vocab_size:
        why = "unavailable (the reference has no texts to build a vocabulary from)"
        unavailable["new_vocab_share"] = why
    if got.text_rows and not ref.jp_share:
        why = "unavailable (the reference has no Japanese-script messages to compare with)"
        unavailable["jp_share_ratio"] = why
    if ref.len_mean is None:
        unavailable["len_mean_ratio"] = "unavailable (the reference has no token lengths)"
    tok = {}
    if got.text_rows and ref.vocab_size:
        tok = textdrift.new_vocab_counts(con, widths)
    for w in windows:
        n_tok, n_new = tok.get((w["kind"], w["start"]), (0, 0))
        w["new_vocab_share"] = round(n_new / n_tok, 6) if n_tok else None
        w["jp_share_ratio"] = _ratio(w["jp_share"], ref.jp_share)
        w["len_mean_ratio"] = _ratio(w["len_mean"], ref.len_mean)
    return unavailable


def _sampled(
    windows: list[dict[str, Any]],
    con: duckdb.DuckDBPyConnection,
    sample: dict[tuple[str, int], str],
    ref: Reference,
    settings: MonitorSettings,
    widths: dict[str, int],
    name: str,
) -> dict[str, Any]:
    """The labelled sample's signals into each window; what was matched."""
    matched = accuracy.register_labels(con, sample)
    if matched == 0:
        raise UserError(
            f"{name}: none of its {len(sample)} labels matches a champion line "
            "(request_id, item) of the logs; label a sample of the same traffic"
        )
    by_window = accuracy.sampled_accuracy(
        con,
        widths,
        ref.rare,
        min_labels=settings.min_labels,
        per_intent_min=settings.per_intent_min_labels,
    )
    empty = {k: (0 if k.endswith("_n") else None) for k in SAMPLED}
    for w in windows:
        w.update(by_window.get((w["kind"], w["start"])) or {**empty, "per_intent": {}})
    return {"file": name, "labels": len(sample), "matched": matched}


def write_report(report: dict[str, Any], out: str | Path) -> dict[str, Path]:
    """``out/monitor.json`` and ``out/dashboard.html``, each written atomically."""
    from mangaassist.monitor.dashboard import render_dashboard

    out = Path(out)
    paths = {"json": out / "monitor.json", "dashboard": out / "dashboard.html"}
    t0 = time.perf_counter()
    page = render_dashboard(report)
    report.setdefault("timings", {})["dashboard_s"] = round(time.perf_counter() - t0, 3)
    write_text(paths["json"], json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    write_text(paths["dashboard"], page)
    return paths
