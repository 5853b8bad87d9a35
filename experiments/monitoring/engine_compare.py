"""DuckDB or Polars for the monitor: the same job on the same JSONL logs, each in a fresh process.

The job is the monitor's core: read the serve log's columns, keep champion lines, and per hour
compute volume, P50/P95/P99 latency, low-confidence rate and mean confidence, plus the hourly
intent counts. Prints one line per engine: lines/s and peak RSS (``ru_maxrss`` of the child).

    pip install polars==2.1.0   # not a project dependency: only this comparison needs it
    python experiments/monitoring/engine_compare.py --lines 1000000

A second check feeds each engine a file with a garbage line and a torn last line: the monitor
must skip and count those, not fail.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

DUCKDB = """
import duckdb, sys, glob
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
files = sorted(glob.glob(sys.argv[1] + '/predictions-*.jsonl'))
con.execute('''CREATE TABLE log AS SELECT ts, latency_ms, intent, confidence, fallback_reason
  FROM read_json(?, format='newline_delimited', ignore_errors=true, columns={ts:'TIMESTAMPTZ',
  latency_ms:'DOUBLE', intent:'VARCHAR', confidence:'DOUBLE', fallback_reason:'VARCHAR',
  role:'VARCHAR'}) WHERE coalesce(role, 'champion') = 'champion' ''', [files])
w = con.sql('''SELECT epoch(time_bucket(INTERVAL 1 hour, ts)) b, count(*) n,
  quantile_cont(latency_ms, [0.5, 0.95, 0.99]) q, avg((fallback_reason='low_confidence')::INT),
  avg(confidence) FROM log GROUP BY b ORDER BY b''').fetchall()
k = con.sql('''SELECT epoch(time_bucket(INTERVAL 1 hour, ts)) b, intent, count(*)
  FROM log GROUP BY ALL''')
print(len(w), sum(r[1] for r in w), len(k.fetchall()))
"""

POLARS = """
import polars as pl, sys, glob
files = sorted(glob.glob(sys.argv[1] + '/predictions-*.jsonl'))
schema = {'ts': pl.String, 'latency_ms': pl.Float64, 'intent': pl.String,
          'confidence': pl.Float64, 'fallback_reason': pl.String, 'role': pl.String}
lf = (pl.scan_ndjson(files, schema=schema, ignore_errors=True)
      .filter(pl.col('role').fill_null('champion') == 'champion')
      .with_columns(pl.col('ts').str.to_datetime(time_zone='UTC').dt.truncate('1h').alias('b')))
df = lf.collect()
w = df.group_by('b').agg(pl.len().alias('n'), *[pl.col('latency_ms').quantile(q).alias(str(q))
    for q in (0.5, 0.95, 0.99)], (pl.col('fallback_reason') == 'low_confidence').mean(),
    pl.col('confidence').mean()).sort('b')
k = df.group_by('b', 'intent').len()
print(w.height, int(w['n'].sum()), k.height)
"""


def run(code: str, folder: str) -> tuple[float, float, str]:
    """Seconds, child peak RSS in MB, and stdout of one engine's job in a fresh interpreter."""
    # The child reports its own peak: RUSAGE_CHILDREN would be the max over all children.
    code += "\nimport resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code, folder], capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if res.returncode != 0:
        return secs, float("nan"), "FAILED: " + res.stderr.strip().splitlines()[-1][:160]
    *out, rss = res.stdout.strip().splitlines()
    return secs, int(rss) / 1024, " ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--dir", help="reuse logs already written here (synthlog.write_logs)")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    import synthlog

    tmp = tempfile.mkdtemp(prefix="engine-compare-")
    folder = args.dir or f"{tmp}/logs"
    if not args.dir:
        synthlog.write_logs(folder, args.lines, torn=False)
    n = sum(1 for f in Path(folder).glob("predictions-*.jsonl") for _ in f.open("rb"))
    results = {}
    for name, code in (("duckdb", DUCKDB), ("polars", POLARS)):
        secs, rss, out = run(code, folder)
        results[name] = {"seconds": round(secs, 2), "lines_per_s": round(n / secs), "rss_mb": rss}
        print(
            f"[ENGINE] engine={name} lines={n} seconds={secs:.2f} lines_per_s={n / secs:,.0f} "
            f"peak_rss_mb={rss:.0f} out={out!r}"
        )
    bad = Path(tmp) / "bad"
    bad.mkdir()
    good = '{"ts":"2026-12-07T00:00:00+00:00","latency_ms":5,"intent":"faq","confidence":0.9}\n'
    (bad / "predictions-20261207.jsonl").write_text(good + "garbage\n" + good + '{"ts":"2026-')
    for name, code in (("duckdb", DUCKDB), ("polars", POLARS)):
        print(f"[ENGINE] engine={name} malformed_lines_check={run(code, str(bad))[2]!r}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
