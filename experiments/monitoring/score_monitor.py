"""The monitor's own score: false alerts on stationary traffic, delay and signals on each drift.

    python experiments/monitoring/score_monitor.py            # all scenarios, default model
    python experiments/monitoring/score_monitor.py --only stationary:2 --work /tmp/s --out s.json

For each scenario (``NAME:DAYS``; default ``stationary`` over 30 simulated days and each drift
scenario of conf/monitor/scenarios.yaml over enough days to start and show) it runs the real
commands in child processes::

    mangaassist simulate --bundle BUNDLE --scenario NAME --days DAYS --rate-per-hour RATE \
        --seed SEED --out WORK/NAME
    mangaassist monitor WORK/NAME/logs --reference RUN --labels WORK/NAME/labels.jsonl \
        --out WORK/NAME/monitor

then reads the printed ``[ALERT]`` lines and ``monitor.json`` and scores them against the
scenario's truth (``scenario.json``: drift start and end, ``expected_signals``):

* every fired alert, its window, the delay from the drift's start to the end of the window that
  fired it (a window's line and alert print when it ends), and the conditions that held;
* an alert whose window ends before the drift starts is a false alert (all of stationary's);
* which expected signals fired an alert during the drift, which did not, and how each moved
  (daily mean before the drift, during it, and its worst day; the hourly low-confidence rate's
  worst hour), so a signal that moved without crossing its threshold is visible;
* the true accuracy of the model before and during the drift (``truth.jsonl`` joined with the
  log by request id: the generator knows every message's label).

Writes ``--out`` (default experiments/monitoring/score.json) and prints one line per scenario.
Thresholds are the monitor's defaults (conf/monitor/default.yaml); nothing is tuned here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUN = Path(
    "/work/fresh/outputs/mangaassist/minilm-focal_weighted-s0/2026-12-01_19-33-27"
)  # the default model (minilm, focal_weighted, seed 0); its export/ is the bundle
DEFAULT_PLAN = (
    "stationary:30",
    "sale_event:10",
    "new_hit_title:10",
    "jp_surge:10",
    "broken_preprocessing:10",
    "label_shift_slow:28",  # the creep steps up weekly from day 7: three steps by day 28
)

# expected_signals names (conf/monitor/scenarios.yaml) -> the window signals behind them.
SIGNAL_OF = {
    "intent_mix": ("kl_div", "chi2_p"),
    "low_conf_rate": ("low_conf_rate",),
    "fallback_rate": ("fallback_rate",),
    "est_acc": ("est_acc",),
    "sampled_acc": ("sampled_acc",),
    "rare_recall": ("rare_recall",),
    "new_vocab_share": ("new_vocab_share",),
    "jp_en_share": ("jp_share_ratio",),
    "length": ("len_mean_ratio",),
    "latency": ("p95_ms",),
}
# Signals shown in each scenario's "moved" table (daily windows; low_conf_rate also hourly).
TRACKED = (
    "kl_div",
    "chi2_p",
    "low_conf_rate",
    "fallback_rate",
    "est_acc",
    "sampled_acc",
    "rare_recall",
    "new_vocab_share",
    "jp_share_ratio",
    "len_mean_ratio",
)
ALERT_RE = re.compile(r"^\[ALERT\] (\w+)=(true|cleared) ")
COND_RE = re.compile(r"^(\w+)=")


def _t(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _run(cmd: list[str], log: Path) -> tuple[str, float]:
    """Run ``cmd`` from the repo root; stdout returned, both streams kept in ``log``."""
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    log.write_text(f"$ {' '.join(cmd)}\n{res.stdout}\n--- stderr ---\n{res.stderr}")
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-3000:]}")
    return res.stdout, secs


def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("mangaassist")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mangaassist.cli"]


def true_accuracy(sim: Path, drift_start: str | None, drift_end: str | None) -> dict[str, Any]:
    """The model's accuracy on every message (truth.jsonl x the log), before/during drift."""
    import duckdb

    con = duckdb.connect()
    logs = str(sim / "logs" / "predictions-*.jsonl")
    truth = str(sim / "truth.jsonl")
    con.execute(
        f"""
        CREATE TABLE j AS
        SELECT t.ts::TIMESTAMPTZ AS ts, t.label = l.intent AS ok, t.drift AS drift, t.tags
        FROM read_json('{truth}', format='newline_delimited') t
        JOIN read_json('{logs}', format='newline_delimited',
                       columns={{'request_id': 'VARCHAR', 'item': 'INTEGER',
                                 'intent': 'VARCHAR'}}) l
          USING (request_id, item)
        """
    )
    out: dict[str, Any] = {}
    for name, where in (("all", "true"), ("no_drift", "NOT drift"), ("drifted", "drift")):
        n, acc = con.execute(f"SELECT count(*), avg(ok::INT) FROM j WHERE {where}").fetchone()
        out[name] = {"n": n, "acc": None if acc is None else round(acc, 4)}
    tags = con.execute(  # per message tag (jp, hit_title, slang, html_entities, all_caps)
        "SELECT tag, count(*), avg(ok::INT) FROM (SELECT unnest(tags) AS tag, ok FROM j) "
        "GROUP BY tag ORDER BY tag"
    ).fetchall()
    out["by_tag"] = {t: {"n": n, "acc": round(a, 4)} for t, n, a in tags}
    if drift_start:  # during the drift window, drifted or not (what the monitor sees)
        end = drift_end or "9999-01-01T00:00:00+00:00"
        n, acc = con.execute(
            "SELECT count(*), avg(ok::INT) FROM j "
            "WHERE ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ",
            [drift_start, end],
        ).fetchone()
        out["during_drift_window"] = {"n": n, "acc": None if acc is None else round(acc, 4)}
    return out


def moved(
    windows: list[dict], drift_start: str | None, drift_end: str | None
) -> dict[str, dict[str, Any]]:
    """Per tracked signal: daily mean before the drift, during it, and the worst day of it."""
    start = _t(drift_start) if drift_start else None
    end = _t(drift_end) if drift_end else None

    def phase(w: dict) -> str:
        if start is None or _t(w["end"]) <= start:
            return "before"
        if _t(w["start"]) >= start and (end is None or _t(w["end"]) <= end):
            return "during"
        return "other"  # straddles the start or the end, or after the end

    out: dict[str, dict[str, Any]] = {}
    for kind in ("daily", "hourly"):
        own = [w for w in windows if w["kind"] == kind]
        for sig in TRACKED if kind == "daily" else ("low_conf_rate", "kl_div", "p95_ms"):
            vals: dict[str, list[float]] = {"before": [], "during": [], "other": []}
            for w in own:
                if w.get(sig) is not None:
                    vals[phase(w)].append(w[sig])
            low_bad = sig in ("est_acc", "sampled_acc", "rare_recall", "chi2_p")
            worst = min if low_bad else max
            during = vals["during"] if start is not None else vals["before"]  # stationary: all
            out[f"{kind}.{sig}"] = {
                "before_mean": _mean(vals["before"]) if start is not None else None,
                "during_mean": _mean(during),
                "during_worst": round(worst(during), 6) if during else None,
                "windows_with_value": len(during),
            }
    return out


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 6) if xs else None


def score(name: str, sim: Path, stdout: str, report: dict, info: dict) -> dict[str, Any]:
    """One scenario's score from the monitor's stdout and report and the simulator's truth."""
    printed = [m.groups() for line in stdout.splitlines() if (m := ALERT_RE.match(line))]
    fires = [e for e in report["alerts"] if e["event"] == "fire"]
    clears = [e for e in report["alerts"] if e["event"] == "clear"]
    start = _t(info["drift_start"]) if info["drift_start"] else None
    days = info["days"]
    alerts = []
    for e in fires:
        end = _t(e["end"])
        delay = None if start is None else round((end - start).total_seconds() / 3600, 1)
        alerts.append(
            {
                "rule": e["rule"],
                "window": e["window"],
                "start": e["start"],
                "end": e["end"],
                "delay_h": delay,
                "false": start is None or end <= start,
                "windows_open": e["windows"],
                "still_active": e["active"],
                "met": e["met"],
                "signals": e["signals"],
            }
        )
    true_alerts = [a for a in alerts if not a["false"]]
    false_alerts = [a for a in alerts if a["false"]]
    fired_signals: dict[str, str] = {}  # window signal -> first rule/time that fired on it
    for a in sorted(true_alerts, key=lambda a: a["end"]):
        for cond in a["met"]:
            sig = COND_RE.match(cond).group(1)  # type: ignore[union-attr]
            fired_signals.setdefault(sig, f"{a['rule']}@{a['end']}")
    expected = info["expected_signals"]
    caught = [s for s in expected if any(x in fired_signals for x in SIGNAL_OF[s])]
    first = min(true_alerts, key=lambda a: a["end"]) if true_alerts else None
    pre_days = (start - _t(info["start"])).total_seconds() / 86400 if start else days
    return {
        "scenario": name,
        "description": info["description"],
        "days": days,
        "messages": info["counts"]["messages"],
        "labelled": info["counts"]["labelled"],
        "start": info["start"],
        "drift_start": info["drift_start"],
        "drift_end": info["drift_end"],
        "expected_signals": expected,
        "printed_alert_lines": {
            "fire": sum(1 for _, v in printed if v == "true"),
            "clear": sum(1 for _, v in printed if v == "cleared"),
        },
        "fired": len(fires),
        "cleared": len(clears),
        "false_alerts": len(false_alerts),
        "false_alerts_per_30d": round(len(false_alerts) * 30 / pre_days, 2) if pre_days else None,
        "stationary_days_judged": round(pre_days, 2),
        "first_alert": None
        if first is None
        else {k: first[k] for k in ("rule", "window", "end", "delay_h", "met")},
        "first_alert_per_rule": {
            r: min((a for a in true_alerts if a["rule"] == r), key=lambda a: a["end"])["delay_h"]
            for r in dict.fromkeys(a["rule"] for a in true_alerts)
        },
        "signals_fired": fired_signals,
        "expected_caught": caught,
        "expected_missed": [s for s in expected if s not in caught],
        "unexpected_signals": sorted(
            s for s in fired_signals if not any(s in SIGNAL_OF[e] for e in expected)
        ),
        "alerts": alerts,
        "moved": moved(report["windows"], info["drift_start"], info["drift_end"]),
        "true_accuracy": true_accuracy(sim, info["drift_start"], info["drift_end"]),
        "unavailable": report["unavailable"],
    }


def table(doc: dict[str, Any]) -> str:
    """The README's table: one row per scenario, from score.json."""
    head = (
        "| scenario | days (drift from) | messages | alerts fired (false) | first alert, delay "
        "| rules fired (delay h) | expected signals caught | expected, not caught | true acc "
        "before -> during |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for name, r in doc["scenarios"].items():
        start = r["drift_start"]
        start_day = "-" if not start else f"day {(_t(start) - _t(r['start'])).days}"
        first = r["first_alert"]
        first_s = "none" if first is None else f"{first['rule']} +{first['delay_h']:g} h"
        rules = ", ".join(f"{k} ({v:g})" for k, v in r["first_alert_per_rule"].items()) or "-"
        acc = r["true_accuracy"]
        during = acc.get("during_drift_window", acc["all"])["acc"]
        before = acc["no_drift"]["acc"]
        acc_s = f"{100 * before:.1f} -> {100 * during:.1f}" if start else f"{100 * before:.1f}"
        rows.append(
            f"| {name} | {r['days']} ({start_day}) | {r['messages']:,} | {r['fired']} "
            f"({r['false_alerts']}) | {first_s} | {rules} | "
            f"{', '.join(r['expected_caught']) or '-'} | {', '.join(r['expected_missed']) or '-'} "
            f"| {acc_s} |"
        )
    return head + "\n".join(rows) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", action="store_true", help="print --out as a Markdown table")
    ap.add_argument("--run", default=str(RUN), help="the model's run dir (the --reference)")
    ap.add_argument("--bundle", help="exported bundle (default RUN/export)")
    ap.add_argument("--only", nargs="+", metavar="NAME:DAYS", help=f"default {DEFAULT_PLAN}")
    ap.add_argument("--rate-per-hour", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="/tmp/score-monitor", help="simulations go here")
    ap.add_argument("--reuse", action="store_true", help="keep simulations already in --work")
    ap.add_argument("--out", default=str(HERE / "score.json"))
    args = ap.parse_args()
    run, bundle = Path(args.run), Path(args.bundle or Path(args.run) / "export")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out_path = Path(args.out)
    if args.table:
        print(table(json.loads(out_path.read_text())), end="")
        return 0
    results: dict[str, Any] = {}
    if args.reuse and out_path.is_file():
        results = json.loads(out_path.read_text()).get("scenarios", {})
    cli = _cli()
    for item in args.only or DEFAULT_PLAN:
        name, _, days = item.partition(":")
        sim = work / name
        t0 = time.strftime("%H:%M:%S")
        print(f"[SCORE] {name}: {days or 7} days from {t0} ...", flush=True)
        sim_s = None
        if not (args.reuse and (sim / "scenario.json").is_file()):
            if sim.exists():
                import shutil

                shutil.rmtree(sim)
            cmd = [*cli, "simulate", "--bundle", str(bundle), "--scenario", name]
            cmd += ["--days", days or "7", "--rate-per-hour", str(args.rate_per_hour)]
            cmd += ["--seed", str(args.seed), "--out", str(sim)]
            _, sim_s = _run(cmd, work / f"{name}.simulate.log")
        mon = [*cli, "monitor", str(sim / "logs"), "--reference", str(run)]
        mon += ["--labels", str(sim / "labels.jsonl"), "--out", str(sim / "monitor")]
        stdout, mon_s = _run(mon, work / f"{name}.monitor.log")
        (work / f"{name}.monitor.txt").write_text(stdout)
        report = json.loads((sim / "monitor" / "monitor.json").read_text())
        info = json.loads((sim / "scenario.json").read_text())
        res = score(name, sim, stdout, report, info)
        if sim_s is None:  # --reuse: keep the time the simulation took when it was made
            sim_s = results.get(name, {}).get("seconds", {}).get("simulate")
        res["seconds"] = {
            "simulate": None if sim_s is None else round(sim_s, 1),
            "monitor": round(mon_s, 1),
        }
        results[name] = res
        first = res["first_alert"]
        print(
            f"[SCORE] {name} fired={res['fired']} false={res['false_alerts']} "
            f"first={first['rule'] + ' +' + str(first['delay_h']) + 'h' if first else 'none'} "
            f"caught={','.join(res['expected_caught']) or '-'} "
            f"missed={','.join(res['expected_missed']) or '-'} "
            f"acc={res['true_accuracy']} sim_s={sim_s} monitor_s={mon_s:.1f}",
            flush=True,
        )
        _write(out_path, args, run, bundle, results)
    return 0


def _write(out: Path, args: argparse.Namespace, run: Path, bundle: Path, results: dict) -> None:
    cmd = "python experiments/monitoring/score_monitor.py" + (
        f" --only {' '.join(args.only)}" if args.only else ""
    )
    doc = {
        "command": cmd,
        "model": {"run": str(run), "bundle": str(bundle), "predictor": "model.int8.onnx"},
        "rate_per_hour": args.rate_per_hour,
        "seed": args.seed,
        "label_share": 0.02,
        "monitor_config": "conf/monitor/default.yaml (defaults, untuned)",
        "machine": f"{platform.machine()} {os.cpu_count()} cores, shared",
        "scenarios": results,
    }
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
