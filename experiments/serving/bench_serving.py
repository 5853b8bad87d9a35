"""Serving benchmark: the model alone, then the HTTP server under open-loop load, one run.

Usage (a bundle with int8, e.g. after `mangaassist export RUN --quantize int8`)::

    python experiments/serving/bench_serving.py outputs/default/export [--quick]

Phases, all in this one process and run (so every ratio compares figures of the same moment):

1. Model only (no HTTP), ONNX Runtime with 2 threads: batch-1 P50/P95 and throughput at batch 32,
   length-grouped (messages sorted by length) and mixed (random order), fp32 and int8. The best
   of these is the *ceiling* the server is compared with.
2. ``mangaassist serve`` as a child process per configuration; this process is the load
   generator (``mangaassist.serve.loadtest``, open loop, aiohttp). Nothing is pinned: server and
   client share the 2 cores through the OS scheduler, as they would on one small instance.
   Per configuration: time to ready and resident memory, 50 req/s for 20 s (P50/P95/P99), and
   the highest rate whose P95 stays under 15 ms with no errors (stepped x1.2, 10 s a step).
   A baseline in the same run: the same server with batching off (one model call per request).
   Beside it, the HTTP path without the model (a request refused by validation), so the
   framework's own cost is visible.

Writes ``results.json`` and ``RESULTS.md`` beside this file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from mangaassist.data.schema import read_examples
from mangaassist.evaluation.after_training import GOLDEN
from mangaassist.evaluation.latency import percentiles
from mangaassist.inference import Predictor, open_bundle
from mangaassist.serve.loadtest import find_max_rate, format_line, load_test

HERE = Path(__file__).resolve().parent
BUDGET_MS = 15.0
CONFIGS = {  # name -> serve overrides ({bundle} is the bundle being measured)
    "int8_batched": ["precision=int8"],
    "fp32_batched": ["precision=fp32"],
    "int8_unbatched": ["precision=int8", "batching=false"],
    "int8_2workers": ["precision=int8", "workers=2", "threads=1"],
    "int8_shadow": ["precision=int8", "shadow={bundle}"],  # the same model in the shadow
}
# Configurations measured at the fixed rates only (the shadow's cost is a latency question).
FIXED_ONLY = {"int8_shadow"}
RATES = (50, 200)  # req/s: the light rate of the target (P95 <= 5 ms) and a busier one


def model_only(bundle: Path, texts: list[str], seconds: float) -> dict:
    """Batch-1 latency and batch-32 throughput of the bare predictor, per precision."""
    out = {}
    b = open_bundle(bundle)
    for precision in b.precisions():
        p = Predictor.from_bundle(b, precision, num_threads=2)
        p.logits(texts[:64])  # warm-up
        samples = []
        for t in texts[:300]:
            t0 = time.perf_counter()
            p.predict_one(t)
            samples.append((time.perf_counter() - t0) * 1000)
        row = {"batch1": percentiles(samples)}
        ids = p.tokenizer.encode(texts)
        for name, order in (
            ("grouped", sorted(range(len(ids)), key=lambda i: len(ids[i]))),
            ("mixed", random.Random(0).sample(range(len(ids)), len(ids))),
        ):
            batches = [[ids[i] for i in order[s : s + 32]] for s in range(0, len(order), 32)]
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                for batch in batches:
                    p.run_ids(batch)
                    n += len(batch)
            row[f"batch32_{name}_msg_s"] = n / (time.perf_counter() - t0)
        out[precision] = row
        print(
            f"[MODEL_ONLY] precision={precision} batch1_p50_ms={row['batch1']['p50_ms']:.2f} "
            f"batch1_p95_ms={row['batch1']['p95_ms']:.2f} "
            f"batch32_grouped_msg_s={row['batch32_grouped_msg_s']:.0f} "
            f"batch32_mixed_msg_s={row['batch32_mixed_msg_s']:.0f}",
            flush=True,
        )
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    """Resident MiB of a process and its children (workers)."""
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.is_file():
        pids += [int(c) for c in children.read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def serve_config(bundle: Path, name: str, overrides: list[str], texts: list[str], a) -> dict:
    """Start a server, measure it, stop it (by pid, whatever happens)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    logs = HERE / ".logs" / name
    cmd = [sys.executable, "-m", "mangaassist.cli", "serve", str(bundle), f"port={port}"]
    cmd += [f"log_dir={logs}", "log_level=warning"]
    cmd += [o.format(bundle=bundle.resolve()) for o in overrides]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    row: dict = {"overrides": overrides}
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name}: server exited: {proc.stdout.read()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        row["ready_s"] = time.perf_counter() - t0
        row["rss_mb"] = _rss_mb(proc.pid)
        for rate in RATES:
            fixed = load_test(url, texts, rate, a.light_s)
            print(f"[BENCH] config={name} rate={rate}: {format_line(fixed)}", flush=True)
            row[f"fixed_{rate}rps"] = fixed
        if name in FIXED_ONLY:
            row["metrics_shadow"] = _metric_lines(url, "mangaassist_shadow_skipped_total")
            return row
        if name == "int8_batched":
            # The framework's own cost: the same route, refused by validation before the model.
            http = load_test(url, [" "], 1000, 5)
            row["http_only_1000rps"] = {k: http[k] for k in ("p50_ms", "p95_ms", "p99_ms")}
            print(f"[BENCH] config={name} http-only (422 path): {format_line(http)}", flush=True)
        found = find_max_rate(
            url,
            texts,
            a.start_rate,
            a.step_s,
            budget_ms=BUDGET_MS,
            step=1.2,
            max_rate=3000,
            echo=lambda line: print(f"[BENCH] config={name} {line}", flush=True),
        )
        row["max_sustained_rps"] = found["max_sustained_rps"]
        row["p95_at_max_ms"] = found["p95_ms"]
        row["steps"] = [
            {
                k: s[k]
                for k in (
                    "rate",
                    "p50_ms",
                    "p95_ms",
                    "p99_ms",
                    "error_rate",
                    "passed",
                    "achieved_rps",
                    "send_lag_p99_ms",
                )
            }
            for s in found["steps"]
        ]
        row["batch_size_mean"] = _mean_batch(url)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return row


def _metric_lines(url: str, name: str) -> list[str]:
    return [x for x in httpx.get(f"{url}/metrics").text.splitlines() if x.startswith(name)]


def _mean_batch(url: str) -> float | None:
    """Mean messages per model batch from the server's histogram (one process's view)."""
    text = httpx.get(f"{url}/metrics").text
    vals = {}
    for line in text.splitlines():
        for key in ("mangaassist_batch_size_sum", "mangaassist_batch_size_count"):
            if line.startswith(key + " "):
                vals[key] = float(line.split()[1])
    count = vals.get("mangaassist_batch_size_count")
    return vals["mangaassist_batch_size_sum"] / count if count else None


def _f(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def summarise(r: dict) -> str:
    """RESULTS.md: the tables and the ratios the serving issue asks for, from one run."""
    mo, sv = r["model_only"], r["servers"]
    lines = [
        "# Serving benchmark",
        "",
        f"Command: `{r['command']}`  ",
        f"Bundle: `{r['bundle']}` (model {r['model_version']}); messages: {r['messages']}; "
        f"{r['cores']} cores shared by server and load generator (not pinned).",
        "",
        "## Model only (ONNX Runtime, 2 threads, no HTTP)",
        "",
        "| precision | batch-1 P50 ms | batch-1 P95 ms | batch 32 grouped msg/s "
        "| batch 32 mixed msg/s |",
        "|---|---|---|---|---|",
    ]
    for prec, m in mo.items():
        lines.append(
            f"| {prec} | {_f(m['batch1']['p50_ms'], 2)} | {_f(m['batch1']['p95_ms'], 2)} | "
            f"{m['batch32_grouped_msg_s']:.0f} | {m['batch32_mixed_msg_s']:.0f} |"
        )
    lines += [
        "",
        "## Server (HTTP, open loop, P95 budget 15 ms)",
        "",
        "| config | ready s | RSS MiB | P50/P95/P99 ms @50 | P50/P95/P99 ms @200 "
        "| max rate P95<15, 0 err | mean batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in sv.items():
        cells = []
        for rate in RATES:
            x = row.get(f"fixed_{rate}rps", {})
            cells.append("/".join(_f(x.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms")))
        lines.append(
            f"| {name} | {_f(row['ready_s'])} | {row['rss_mb']:.0f} | {cells[0]} | {cells[1]} | "
            f"{_f(row.get('max_sustained_rps'), 0)} | {_f(row.get('batch_size_mean'))} |"
        )
    lines += ["", "## Ratios", ""]

    def rate(name: str) -> float | None:
        return sv.get(name, {}).get("max_sustained_rps")

    for prec in ("int8", "fp32"):
        name = f"{prec}_batched"
        if rate(name) and prec in mo:
            ceiling = max(mo[prec]["batch32_grouped_msg_s"], mo[prec]["batch32_mixed_msg_s"])
            lines.append(
                f"- {name}: {rate(name):.0f} req/s sustained = {100 * rate(name) / ceiling:.0f}% "
                f"of the model-only ceiling ({ceiling:.0f} msg/s, same run)"
            )
    if rate("int8_batched") and rate("int8_unbatched"):
        on, off = rate("int8_batched"), rate("int8_unbatched")
        lines.append(f"- batching on / off (int8): {on:.0f} / {off:.0f} req/s = {on / off:.2f}x")
    if rate("int8_batched") and rate("int8_2workers"):
        lines.append(
            f"- one process x 2 threads / two processes x 1 thread: {rate('int8_batched'):.0f} / "
            f"{rate('int8_2workers'):.0f} req/s"
        )
    if "int8_shadow" in sv and "int8_batched" in sv:
        for r_ in RATES:
            on = sv["int8_shadow"][f"fixed_{r_}rps"]["p95_ms"]
            off = sv["int8_batched"][f"fixed_{r_}rps"]["p95_ms"]
            if on and off:
                ratio = on / off
                lines.append(
                    f"- shadow on / off at {r_} req/s: P95 {on:.1f} / {off:.1f} ms = {ratio:.2f}x"
                )
    if "http_only_1000rps" in sv.get("int8_batched", {}):
        h = sv["int8_batched"]["http_only_1000rps"]
        lines.append(
            f"- HTTP path without the model (request refused by validation) at 1000 req/s: "
            f"P50/P95/P99 {_f(h['p50_ms'])}/{_f(h['p95_ms'])}/{_f(h['p99_ms'])} ms"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--model-seconds", type=float, default=8.0)
    parser.add_argument("--light-s", type=float, default=20.0)
    parser.add_argument("--step-s", type=float, default=10.0)
    parser.add_argument("--start-rate", type=float, default=100.0)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    a = parser.parse_args()
    texts = [ex.text for ex in read_examples(GOLDEN)]  # hand-written messages
    results = {
        "bundle": str(a.bundle),
        "model_version": open_bundle(a.bundle).version,
        "messages": f"golden set, {len(texts)} hand-written messages, cycled",
        "cores": os.cpu_count(),
        "command": "python " + " ".join(sys.argv),
        "model_only": model_only(a.bundle, texts, a.model_seconds),
        "servers": {},
    }
    for name in a.configs.split(","):
        results["servers"][name] = serve_config(a.bundle, name, CONFIGS[name], texts, a)
    a.out.write_text(json.dumps(results, indent=1))
    md = a.out.with_name("RESULTS.md")
    md.write_text(summarise(results))
    print(md.read_text())
    print(f"[BENCH] results={a.out} table={md}")


if __name__ == "__main__":
    main()
