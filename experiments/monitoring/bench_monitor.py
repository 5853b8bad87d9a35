"""How fast the monitor reads a week of logs: N simulated lines, then `mangaassist monitor` on them.

    python experiments/monitoring/bench_monitor.py --lines 1000000
    python experiments/monitoring/bench_monitor.py --lines 10000000 --dir /tmp/bench10m

Writes N serve-shaped lines over 7 days (``synthlog.write_logs``: daily files, 5% shadow lines,
text logged, a torn last line), a reference run folder and a 1% labelled sample, then runs the
real command (``monitor LOGS --reference REF --labels SAMPLE --out OUT``) in a child process,
so the figures are the monitor's alone: wall seconds, lines/s (all lines read, shadow included)
and the child's peak RSS (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``; only one child
runs). ``--reuse`` skips writing when ``--dir`` already holds the logs.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import synthlog  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="log lines to simulate")
    ap.add_argument("--dir", help="work folder (default: a temp folder, removed after)")
    ap.add_argument("--reuse", action="store_true", help="keep logs already in --dir")
    ap.add_argument("--privacy", choices=["text", "hash"], default="text")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-monitor-"))
    logs, ref = work / "logs", work / "ref"
    t0 = time.perf_counter()
    if not (args.reuse and logs.is_dir()):
        shutil.rmtree(logs, ignore_errors=True)
        synthlog.write_logs(logs, args.lines, seed=args.seed, privacy=args.privacy)
        synthlog.write_reference_run(ref)
    write_s = time.perf_counter() - t0
    n = sum(f.stat().st_size for f in logs.glob("predictions-*.jsonl"))
    cmd = [sys.executable, "-m", "mangaassist.cli", "monitor", str(logs), "--reference", str(ref)]
    cmd += ["--labels", str(work / "labels.jsonl"), "--out", str(work / "out")]
    t1 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    monitor_s = time.perf_counter() - t1
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if res.returncode != 0:
        print(res.stderr[-3000:], file=sys.stderr)
        return res.returncode
    out = res.stdout.splitlines()
    for line in out:
        if not line.startswith(("[MONITOR_HOURLY]", "[MONITOR_DAILY]")):
            print(line)
    report = json.loads((work / "out" / "monitor.json").read_text())
    read = report["logs"]["champion_lines"] + report["logs"]["shadow_lines"]
    print(
        f"[BENCH_MONITOR] lines={read} log_gb={n / 1e9:.2f} write_s={write_s:.1f} "
        f"monitor_s={monitor_s:.1f} lines_per_s={read / monitor_s:,.0f} "
        f"peak_rss_mb={rss_mb:.0f} windows={len(report['windows'])} "
        f"alerts={sum(e['event'] == 'fire' for e in report['alerts'])} privacy={args.privacy}"
    )
    print("[BENCH_MONITOR_PHASES] " + " ".join(f"{k}={v}" for k, v in report["timings"].items()))
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
