"""Blue/green under load: deploy v2, deploy v3, a broken v4 (refused), roll back to v2.

Usage::

    python experiments/deployment/bench_switch.py RUN_DIR [--rate 100] [--duration 40]

A scratch registry gets four versions of RUN_DIR's exported bundle: v1-v3 identical weights
under distinct versions (what is measured is the switch, not the models), v4 with its ONNX
file corrupted in a way that still matches its manifest (so only the load checks can catch
it). ``mangaassist serve --registry`` starts on v1 as a child process; this process sends an
open-loop load (``mangaassist.serve.loadtest.run_load``, one request id each) and, on a fixed
timetable, calls ``mangaassist deploy`` / ``rollback`` through the admin API. Afterwards it
checks every answer against the prediction log and reports failed requests, which version
answered when, and P99 in the second around each switch beside P99 at rest.

Writes ``results.json`` and prints the figures for ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from mangaassist.data.schema import read_examples
from mangaassist.evaluation.after_training import GOLDEN
from mangaassist.inference.bundle import MANIFEST, file_sha256
from mangaassist.release.registry import Registry
from mangaassist.serve.loadtest import run_load
from mangaassist.serve.predlog import read_prediction_logs

HERE = Path(__file__).resolve().parent
TOKEN = "bench-token"
# (seconds after the load starts, action, version)
TIMETABLE = [
    (8, "deploy", "v2"),
    (16, "deploy", "v3"),
    (24, "deploy", "v4"),
    (32, "rollback", None),
]


def build_registry(run_dir: Path, root: Path) -> Registry:
    """v1-v3: the run's bundle under three versions; v4: the same with a corrupt ONNX file."""
    reg = Registry(root)
    src = run_dir / "export"
    if not (src / MANIFEST).is_file():
        subprocess.run(
            [sys.executable, "-m", "mangaassist.cli", "export", str(run_dir), "--quantize", "int8"],
            check=True,
        )
    for _ in range(4):
        version = reg.register(run_dir)
        dst = reg.path(version) / "export"
        shutil.copytree(src, dst)
        manifest = json.loads((dst / MANIFEST).read_text())
        manifest["model_version"] = version
        if version == "v4":
            for name in ("model.onnx", "model.int8.onnx"):
                if (dst / name).is_file():
                    (dst / name).write_bytes(b"\x08\x01 corrupted in transit" * 64)
                    manifest["files"][name]["sha256"] = file_sha256(dst / name)
        (dst / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return reg


async def scenario(url: str, texts: list[str], rate: float, duration: float) -> tuple:
    load = asyncio.create_task(
        run_load(url, texts, rate, duration, samples=True, request_id_prefix="bench-")
    )
    t0 = time.perf_counter()
    events = []
    async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        for at, action, version in TIMETABLE:
            await asyncio.sleep(max(0.0, t0 + at - time.perf_counter()))
            start = time.perf_counter() - t0
            body = {"version": version} if version else None
            r = await c.post(f"{url}/admin/{action}", json=body)
            out = r.json()
            events.append({"action": action, "version": version, "start_s": start,
                           "end_s": time.perf_counter() - t0, "status": r.status_code,
                           "promote": out.get("promote"), "check": out.get("check"),
                           "lines": out.get("lines", [])})  # fmt: skip
            print(f"[BENCH] t={start:.1f}s {action} {version or ''} -> {out.get('lines')}")
    return await load, events


def p99(values: list[float]) -> float | None:
    return float(np.percentile(values, 99)) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=40.0)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    a = parser.parse_args()
    texts = [ex.text for ex in read_examples(GOLDEN)]
    work = Path(tempfile.mkdtemp(prefix="mangaassist-switch-"))
    reg = build_registry(a.run_dir, work / "registry")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    logs = work / "logs"
    cmd = [sys.executable, "-m", "mangaassist.cli", "serve", "--registry", str(reg.root)]
    cmd += [f"port={port}", f"log_dir={logs}", "log_level=warning"]
    reg.promote("v1", reason="bench start")
    env = {**os.environ, "MANGAASSIST_ADMIN_TOKEN": TOKEN}
    proc = subprocess.Popen(cmd, env=env)
    try:
        while True:
            assert proc.poll() is None, "server exited"
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        load, events = asyncio.run(scenario(url, texts, a.rate, a.duration))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
    log = {r["request_id"]: r["model_version"] for r in read_prediction_logs(logs).records}
    lat, offs = load["latencies_ms"], load["offsets_s"]
    versions, statuses = load["versions"], load["statuses"]
    failed = [i for i, s in enumerate(statuses) if s != 200]
    mismatched = [i for i, v in enumerate(versions) if v is not None and log.get(f"bench-{i}") != v]
    windows = [(e["start_s"] - 0.25, e["end_s"] + 1.0) for e in events]

    def near(t: float) -> bool:
        return any(lo <= t <= hi for lo, hi in windows)

    at_rest = [x for x, t in zip(lat, offs, strict=True) if x is not None and not near(t)]
    per_switch = []
    for e, (lo, hi) in zip(events, windows, strict=True):
        inside = [x for x, t in zip(lat, offs, strict=True) if x is not None and lo <= t <= hi]
        per_switch.append({**{k: e[k] for k in ("action", "version", "promote", "check")},
                           "took_s": round(e["end_s"] - e["start_s"], 3),
                           "n": len(inside), "p99_ms": p99(inside)})  # fmt: skip
    order = [v for v in versions if v is not None]
    answered_by = [v for i, v in enumerate(order) if i == 0 or v != order[i - 1]]
    results = {
        "command": "python " + " ".join(sys.argv),
        "rate": a.rate, "duration_s": a.duration, "scheduled": load["scheduled"],
        "failed_requests": len(failed), "status_counts": load["status_counts"],
        "timeouts": load["timeouts"], "conn_errors": load["conn_errors"],
        "answers_not_in_log_as_served": len(mismatched),
        "answered_by_in_order": answered_by,
        "p99_at_rest_ms": p99(at_rest), "p95_overall_ms": load["p95_ms"],
        "switches": per_switch,
        "server_lines": [line for e in events for line in e["lines"]],
    }  # fmt: skip
    a.out.write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if k != "server_lines"}, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
