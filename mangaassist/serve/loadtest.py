"""Open-loop HTTP load generator for ``POST /v1/classify``.

Open loop: request ``i`` is due at ``t0 + i / rate`` (or after seeded exponential gaps with
``arrivals="poisson"``) and is sent then, whatever earlier requests are doing; its latency runs
from that *scheduled* time to the end of the response, so time queued anywhere (server, a full
connection pool, a late client loop) counts. A closed-loop tool, whose workers send the next
request only after the last answer, stops sending while the server stalls and never measures
the requests that would have waited: *coordinated omission*. At 20 req/s against a serialized
100 ms handler a closed loop reports ~100 ms; this tool reports the queue (p99 ~1 s after one
second, see the tests). ``send_lag_*`` (actual - scheduled send) shows when the client itself
fell behind; a warning is printed then.

Not wrk: it is closed loop (a connection sends its next request when the last is answered);
wrk2 fixes that but is a C build not in this environment. Not Locust: its users are closed loop
too (``wait_time`` runs after a task ends, so a user's rate drops once latency exceeds its
pacing); CPU is not the argument (its docs quote ~4000 req/s per core for HttpUser).

Client: aiohttp (C response parser, keep-alive pool whose waiters queue FIFO) on uvloop when
importable. Raw asyncio streams would mean owning an HTTP/1.1 parser to save a little CPU;
aiohttp measured 140-250 us of CPU per request on this project's 2-core VM (4000-7000 req/s
per core), so 500-1000 req/s takes 10-25% of a core. Times come from ``time.perf_counter``:
uvloop's clock and timers have 1 ms resolution, so sub-millisecond send lag is normal (hence
the 2 ms warning threshold).

Example:
    >>> r = load_test("http://127.0.0.1:8000", ["hi"], rate=500, duration_s=30)  # doctest: +SKIP
    >>> print(format_line(r))  # doctest: +SKIP
    [LOAD_TEST] p50_ms=7.9 p95_ms=12.4 p99_ms=18.3 max_ms=30.1 error_rate=0.02% rps=500 ...
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mangaassist.atomic import write_text
from mangaassist.errors import UserError

LAG_WARN_MS = 2.0  # send lag p99 (ms) above this: the client, not the server, may limit
LATE_MS, LATE_SHARE_WARN = 1.0, 0.05  # ...as may over 5% of sends more than 1 ms late
DEFAULT_TEXTS = ("where is my order", "any new isekai volumes", "is vol 12 in stock", "hi")


def read_texts(path: str | Path) -> list[str]:
    """Read the ``text`` field of a JSONL or CSV file; labels are optional.

    ``mangaassist.data.schema.read_examples`` requires a ``label`` on every row, so a
    load-test file of bare messages is read here.

    Raises:
        UserError: missing, empty or unreadable file, bad JSON, no ``text`` column.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; --data needs a JSONL or CSV with 'text'") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read it as UTF-8 text ({err})") from err
    if not raw.strip():
        raise UserError(f"{path}: the file is empty; it needs one message per line")
    if path.suffix == ".csv":
        reader = csv.DictReader(raw.splitlines())
        if "text" not in (reader.fieldnames or []):
            raise UserError(f"{path}: no 'text' column (found {reader.fieldnames})")
        texts = [row.get("text") or "" for row in reader]
    elif path.suffix in (".jsonl", ".json"):
        texts = []
        for i, line in [(i, x) for i, x in enumerate(raw.splitlines(), 1) if x.strip()]:
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{i}: not valid JSON ({err.msg})") from err
            if not isinstance(row, dict) or "text" not in row:
                raise UserError(f"{path}:{i}: expected a JSON object with a 'text' field")
            texts.append(row["text"])
    else:
        raise UserError(f"{path}: unknown format '{path.suffix}'; use .jsonl or .csv")
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise UserError(f"{path}: every 'text' is empty; it needs at least one message")
    return texts


def classify_url(url: str) -> str:
    """A base URL (no path) means ``/v1/classify``; a URL with a path is used as is."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"'{url}' is not an http(s) URL; e.g. http://127.0.0.1:8000")
    return url.rstrip("/") + "/v1/classify" if parts.path in ("", "/") else url


def _offsets(rate: float, duration_s: float, arrivals: str, rng: random.Random) -> list[float]:
    """Scheduled send times in seconds after t0, all < duration_s."""
    if arrivals == "uniform":
        return [i / rate for i in range(round(rate * duration_s))]
    if arrivals != "poisson":
        raise UserError(f"unknown arrivals '{arrivals}'; use uniform or poisson")
    out, t = [], 0.0
    while t < duration_s:  # exponential gaps with mean 1/rate: a Poisson process
        out.append(t)
        t += rng.expovariate(rate)
    return out


def _ms(values: list[float], q: float) -> float | None:
    import numpy as np  # here and in run_load: `mangaassist --help` stays fast

    return round(float(np.percentile(values, q)) * 1000, 3) if values else None


async def run_load(
    url: str,
    texts: list[str] | tuple[str, ...],
    rate: float,
    duration_s: float,
    *,
    arrivals: str = "uniform",
    seed: int = 0,
    connections: int = 64,
    request_timeout_s: float = 5.0,
    drain_timeout_s: float = 10.0,
    max_requests: int | None = None,
    samples: bool = False,
    request_id_prefix: str | None = None,
) -> dict[str, Any]:
    """Send ``rate`` req/s for ``duration_s`` seconds of schedule and summarise latencies.

    Latency percentiles (ms) cover every answered request, ok or not; timeouts and connection
    errors have no latency and count only as errors. Per-request timeouts run from the task
    start, so a wait for a pooled connection counts. After the schedule, in-flight requests
    get ``drain_timeout_s`` more; any still pending are cancelled and counted as timeouts.
    ``samples=True`` adds, in schedule order, ``latencies_ms`` (None where unanswered),
    ``offsets_s`` (scheduled send, seconds from the start), ``statuses`` (HTTP status, or
    ``timeout`` / ``conn_error``) and ``versions`` (the ``X-Model-Version`` that answered).
    ``request_id_prefix`` sends ``X-Request-ID: <prefix><i>`` so each answer can be found in
    the server's prediction log.
    """
    import aiohttp
    import numpy as np

    if rate <= 0 or duration_s <= 0 or connections < 1:
        raise UserError(f"rate ({rate}), duration ({duration_s}), connections must be > 0")
    if not texts:
        raise UserError("no messages to send; pass --data FILE with a 'text' column")
    url = classify_url(url)
    rng = random.Random(seed)
    order = list(texts)
    rng.shuffle(order)  # seeded: the same run sends the same messages in the same order
    bodies = [json.dumps({"text": t}, ensure_ascii=False).encode() for t in order]
    offsets = _offsets(rate, duration_s, arrivals, rng)[:max_requests]
    lat: list[float | None] = [None] * len(offsets)  # seconds from scheduled send to answer
    lags: list[float] = []  # seconds from scheduled to actual send
    per_status: list[int | str | None] = [None] * len(offsets)
    versions: list[str | None] = [None] * len(offsets)
    statuses: Counter[int] = Counter()
    fails = Counter(timeouts=0, conn_errors=0)
    last_answer = 0.0

    async def one(i: int, due: float, session) -> None:  # session: aiohttp.ClientSession
        nonlocal last_answer
        lags.append(time.perf_counter() - due)
        headers = {"X-Request-ID": f"{request_id_prefix}{i}"} if request_id_prefix else None
        try:
            async with asyncio.timeout(request_timeout_s):
                async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as r:
                    await r.read()
            last_answer = time.perf_counter()
            lat[i] = last_answer - due
            statuses[r.status] += 1
            per_status[i], versions[i] = r.status, r.headers.get("X-Model-Version")
        except TimeoutError:
            fails["timeouts"] += 1
            per_status[i] = "timeout"
        except (aiohttp.ClientError, OSError):
            fails["conn_errors"] += 1
            per_status[i] = "conn_error"

    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=None),  # asyncio.timeout above is the only limit
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"Content-Type": "application/json"},
    ) as session:
        tasks: list[asyncio.Task] = []
        t0 = time.perf_counter()
        for i, off in enumerate(offsets):
            # sleep(0) when already late still yields, so responses keep being read
            await asyncio.sleep(max(0.0, t0 + off - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i, t0 + off, session)))
        pending: set[asyncio.Task] = set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=drain_timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        fails["timeouts"] += len(pending)
    # achieved rate over t0 -> last answer (or schedule end if later): a few timeouts that
    # drained for seconds after the schedule do not deflate it
    elapsed = max(last_answer - t0, offsets[-1] if offsets else 0.0, 1e-9)
    answered = [x for x in lat if x is not None]
    ok = sum(n for code, n in statuses.items() if 200 <= code < 300)
    completed = sum(statuses.values())
    errors = completed - ok + fails["timeouts"] + fails["conn_errors"]
    result: dict[str, Any] = {
        "url": url, "rate": rate, "duration_s": duration_s, "arrivals": arrivals,
        "scheduled": len(offsets), "completed": completed, "ok": ok, "errors": errors,
        "error_rate": errors / len(offsets) if offsets else 0.0,
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "timeouts": fails["timeouts"], "conn_errors": fails["conn_errors"],
        **{f"p{q}_ms": _ms(answered, q) for q in (50, 90, 95, 99)},
        "max_ms": _ms(answered, 100),
        "mean_ms": round(float(np.mean(answered)) * 1000, 3) if answered else None,
        "achieved_rps": round(ok / elapsed, 2),
        "send_lag_p50_ms": _ms(lags, 50), "send_lag_p99_ms": _ms(lags, 99),
        "send_late_share": round(sum(x * 1000 > LATE_MS for x in lags) / max(len(lags), 1), 4),
        "started_at": started_at,
    }  # fmt: skip
    if samples:
        result["latencies_ms"] = [None if x is None else round(x * 1000, 3) for x in lat]
        result["offsets_s"] = [round(x, 6) for x in offsets]
        result["statuses"], result["versions"] = per_status, versions
    lag99 = result["send_lag_p99_ms"] or 0.0
    result["client_lagging"] = lag99 > LAG_WARN_MS or result["send_late_share"] > LATE_SHARE_WARN
    if result["client_lagging"]:
        print(
            f"warning: the client was late to send (send_lag_p99_ms={lag99:.2f}, "
            f"{result['send_late_share']:.1%} over {LATE_MS} ms late); latencies include it, "
            f"so the client may be the bottleneck at rate={rate:g}",
            file=sys.stderr,
        )
    return result


def load_test(url: str, texts: list[str] | tuple[str, ...], rate: float, duration_s: float,
              **kwargs: Any) -> dict[str, Any]:  # fmt: skip
    """Synchronous :func:`run_load` on a fresh uvloop (asyncio if uvloop is missing)."""
    coro = run_load(url, texts, rate, duration_s, **kwargs)
    try:
        import uvloop  # measured within a few % of asyncio here: aiohttp dominates the cost
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def format_line(result: dict[str, Any]) -> str:
    """The one-line summary, e.g. ``[LOAD_TEST] p50_ms=7.9 ... error_rate=0.02% rps=500 ...``."""
    f = {k: "nan" if result[k] is None else f"{result[k]:.1f}"
         for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "send_lag_p99_ms")}  # fmt: skip
    rps = result["achieved_rps"]
    rps_s = f"{rps:.0f}" if rps >= 100 else f"{rps:.1f}"  # 3 significant digits is plenty
    return (
        f"[LOAD_TEST] p50_ms={f['p50_ms']} p95_ms={f['p95_ms']} p99_ms={f['p99_ms']} "
        f"max_ms={f['max_ms']} error_rate={100 * result['error_rate']:.2f}% rps={rps_s} "
        f"rate={result['rate']:g} sent={result['scheduled']} lag_p99_ms={f['send_lag_p99_ms']}"
    )


def find_max_rate(
    url: str,
    texts: list[str] | tuple[str, ...],
    start_rate: float,
    duration_s: float,
    *,
    budget_ms: float = 15.0,
    step: float = 1.25,
    additive: bool = False,
    max_rate: float = 5000.0,
    pause_s: float = 1.0,
    refine: bool = True,
    echo: Callable[[str], Any] = print,
    **kwargs: Any,
) -> dict[str, Any]:
    """Step the rate up until a step misses ``p95 < budget_ms`` with zero errors.

    Rates go ``start_rate``, ``*step`` (or ``+step`` when ``additive``), clamped to
    ``max_rate``. With ``refine``, one extra step at the midpoint of the last pass and the
    first fail confirms or raises the answer. ``echo`` gets one line per step and the summary.
    """
    if (additive and step <= 0) or (not additive and step <= 1) or start_rate <= 0:
        raise UserError(f"step {step} would never raise the rate; use > 1 (or +N with N > 0)")
    steps: list[dict[str, Any]] = []

    def run(rate: float) -> dict[str, Any]:
        if steps:
            time.sleep(pause_s)  # let the server drain queues and close idle sockets
        r = load_test(url, texts, round(rate, 2), duration_s, **kwargs)
        r["passed"] = bool(r["errors"] == 0 and r["p95_ms"] is not None and r["p95_ms"] < budget_ms)
        steps.append(r)
        echo(format_line(r) + f" passed={r['passed']}")
        return r

    best, fail, rate = None, None, min(start_rate, max_rate)
    while len(steps) < 100:  # a hard bound even for tiny additive steps
        r = run(rate)
        if not r["passed"]:
            fail = r
            break
        best = r
        if rate >= max_rate:
            break
        rate = min(rate + step if additive else rate * step, max_rate)
    if refine and best and fail and fail["rate"] - best["rate"] > 0.02 * best["rate"]:
        r = run((best["rate"] + fail["rate"]) / 2)
        best = r if r["passed"] else best
    out = {
        "max_sustained_rps": best["rate"] if best else 0.0,
        "budget_ms": budget_ms,
        "p95_ms": best["p95_ms"] if best else None,
        "stopped": "fail" if fail else "max_rate",
        "steps": steps,
    }
    p95 = "nan" if out["p95_ms"] is None else f"{out['p95_ms']:.1f}"
    echo(f"[LOAD_TEST] max_sustained_rps={out['max_sustained_rps']:g} "
         f"budget_ms={budget_ms:g} p95_ms={p95}")  # fmt: skip
    return out


def _cli(args: argparse.Namespace) -> int:
    texts = read_texts(args.data) if args.data else list(DEFAULT_TEXTS)
    kw = dict(arrivals=args.arrivals, seed=args.seed, connections=args.connections,
              request_timeout_s=args.timeout, drain_timeout_s=args.drain_timeout,
              max_requests=args.max_requests, samples=args.samples)  # fmt: skip
    if args.find_max:
        step, additive = args.step
        out = find_max_rate(args.url, texts, args.rate, args.duration, budget_ms=args.budget_ms,
                            step=step, additive=additive,
                            max_rate=args.max_rate, pause_s=args.pause, **kw)  # fmt: skip
        errors = sum(s["errors"] for s in out["steps"])
    else:
        out = load_test(args.url, texts, args.rate, args.duration, **kw)
        print(format_line(out))
        errors = out["errors"]
    if args.out:
        write_text(args.out, json.dumps(out, indent=1) + "\n")
    return 1 if args.fail_on_error and errors else 0


def _step(value: str) -> tuple[float, bool]:
    """``1.25`` multiplies the rate per step, ``+50`` adds 50 req/s: (step, additive)."""
    try:
        return float(value.lstrip("+")), value.startswith("+")
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number like 1.25 or +50") from None


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``loadtest`` on an argparse subparsers object; ``func`` returns an exit code."""
    p = sub.add_parser("loadtest", help="open-loop load test of POST /v1/classify")
    p.add_argument("url", help="base URL (POSTs to /v1/classify) or a full URL with a path")
    p.add_argument("--rate", type=float, default=100.0, help="req/s (--find-max: first step)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of schedule (per step)")
    p.add_argument("--data", help="JSONL or CSV with a 'text' column (default: a few messages)")
    p.add_argument("--arrivals", choices=("uniform", "poisson"), default="uniform")
    p.add_argument("--seed", type=int, default=0, help="message order and Poisson gaps")
    p.add_argument("--connections", type=int, default=64, help="keep-alive pool size")
    p.add_argument("--timeout", type=float, default=5.0, help="per-request timeout, seconds")
    p.add_argument("--drain-timeout", type=float, default=10.0, help="wait for in-flight, s")
    p.add_argument("--max-requests", type=int, help="stop the schedule after this many")
    p.add_argument("--find-max", action="store_true", help="step the rate up to the budget")
    p.add_argument("--budget-ms", type=float, default=15.0, help="P95 budget for --find-max")
    p.add_argument(
        "--step", type=_step, default="1.25", help="rate multiplier, or '+N' to add N req/s"
    )
    p.add_argument("--max-rate", type=float, default=5000.0, help="--find-max rate cap")
    p.add_argument("--pause", type=float, default=1.0, help="seconds between --find-max steps")
    p.add_argument("--out", help="write the result (every step with --find-max) as JSON")
    p.add_argument("--samples", action="store_true", help="keep raw latencies in the JSON")
    p.add_argument("--fail-on-error", action="store_true", help="exit 1 if any request failed")
    p.set_defaults(func=_cli)
    return p
