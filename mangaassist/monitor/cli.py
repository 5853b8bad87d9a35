"""``mangaassist monitor`` and ``mangaassist monitor-reference``.

Printed, in time order: one ``[MONITOR_<WINDOW>]`` line per window (the signals in the
config's ``lines``) and an ``[ALERT]`` line right after the window that fired or cleared it
(a ``roi.rules`` alert, the retrain request, ends with ``roi="..."``: its cost against the
accuracy points lost); before them ``[MONITOR_LOGS]`` (what was read) and
``[MONITOR_UNAVAILABLE]`` (what cannot be computed and why); last, ``[MONITOR] report=...
dashboard=...``. Problems with the logs (skipped and torn lines, naming the files) go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

DEFAULT_CONFIG = "conf/monitor/default.yaml"  # not imported: `mangaassist --help` stays fast


def _print_run(report: dict[str, Any]) -> None:
    from mangaassist.monitor.lines import alert_line, logs_line, window_line

    print(logs_line(report["logs"]))
    if report["unavailable"]:
        why: dict[str, list[str]] = {}
        for signal, reason in report["unavailable"].items():
            why.setdefault(reason, []).append(signal)
        print("[MONITOR_UNAVAILABLE] " + " ".join(f'{",".join(s)}="{r}"' for r, s in why.items()))
    width = report["windows_seconds"]
    events: dict[tuple[str, str], list[dict]] = {}
    for ev in report["alerts"]:
        events.setdefault((ev["window"], ev["start"]), []).append(ev)
    # A window is printed when it ends, a day after its last hour: sort by end, then width.
    for w in sorted(report["windows"], key=lambda w: (w["end"], width[w["kind"]])):
        print(window_line(w, report["lines"].get(w["kind"], [])))
        for ev in events.get((w["kind"], w["start"]), []):
            print(alert_line(ev))


def _monitor(args: argparse.Namespace) -> int:
    from mangaassist.monitor.monitor import run_monitor, write_report

    report = run_monitor(
        args.logs,
        args.reference,
        labels=args.labels,
        registry=args.registry,
        config_path=args.config,
        warn=lambda m: print(f"warning: {m}", file=sys.stderr),
    )
    paths = write_report(report, args.out)
    _print_run(report)
    print(f"[MONITOR] report={paths['json']} dashboard={paths['dashboard']}")
    return 0


def _reference(args: argparse.Namespace) -> int:
    from mangaassist.atomic import write_text
    from mangaassist.monitor.reference import build_reference
    from mangaassist.monitor.settings import load_settings

    ref = build_reference(args.run, load_settings(args.config))
    write_text(args.out, json.dumps(ref, ensure_ascii=False, indent=1) + "\n")
    print(
        f"[MONITOR_REFERENCE] out={args.out} labels={len(ref['labels'])} "
        f"vocab={len(ref['vocab'])} texts={ref['texts']} len_mean={ref['len_mean']}"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``monitor`` and ``monitor-reference`` to the top-level parser."""
    p = sub.add_parser(
        "monitor",
        help="windows, drift, live accuracy and alerts from prediction logs; HTML dashboard",
        description="Read prediction logs (files or folders; rotated, per-worker, torn lines "
        "skipped and counted) into DuckDB, compute hourly/daily/weekly signals against a "
        "reference, apply the alert rules of conf/monitor/default.yaml and write "
        "OUT/monitor.json and OUT/dashboard.html.",
    )
    p.add_argument("logs", nargs="+", metavar="LOGS", help="prediction log files or folders")
    p.add_argument(
        "--reference",
        required=True,
        metavar="RUN_OR_BUNDLE",
        help="run dir (class_counts.json), registry version (folder, or vN/champion with "
        "--registry), or a bundle with reference.json",
    )
    p.add_argument(
        "--labels", metavar="SAMPLE.jsonl", help="labelled sample: request_id, item, label"
    )
    p.add_argument("--config", help=f"monitor settings YAML (default {DEFAULT_CONFIG})")
    p.add_argument("--out", default="monitor", metavar="DIR", help="output folder (monitor/)")
    p.add_argument("--registry", metavar="DIR", help="registry: switches from history.jsonl")
    p.set_defaults(func=_monitor)
    r = sub.add_parser(
        "monitor-reference",
        help="write reference.json (class counts, vocabulary, lengths) from a run, for a bundle",
        description="A bundle has no class counts; this writes them, the vocabulary and the "
        "reference text figures from the run it was exported from.",
    )
    r.add_argument("run", help="run directory or registry version folder")
    r.add_argument("--out", required=True, help="e.g. BUNDLE/reference.json")
    r.add_argument("--config", help="monitor settings YAML (vocab_max_examples, rare_below)")
    r.set_defaults(func=_reference)
